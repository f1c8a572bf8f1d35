// A conversation's page: every turn's question and the council's answer, the chairman's answer
// streaming in as it is written, and the next question. In a group discussion, every member's
// message of every pass streams in, with whom it builds on once the pass is over. Follows the session's one event stream
// with EventSource (which resumes from Last-Event-ID by itself); the answers are untrusted
// model output, shown only through markdown.js.

import { catalogue, formatWhen, h, json, nameOf, setText } from "./dom.js";
import { showMarkdown } from "./markdown.js";

const TERMINAL = new Set(["council.completed", "council.failed", "council.cancelled"]);
const SYNTHESIS = 3;
const COLOR = /^(#[0-9a-f]{3,8}|[a-z]{3,20})$/i; // a catalogue colour, used only if it is one

/** Show session ``sessionId`` in ``root``, live. */
export async function showSession(root, sessionId) {
  document.title = "council — conversation";
  let models;
  let session;
  try {
    [models, session] = await Promise.all([catalogue(), loadSession(sessionId)]);
  } catch (error) {
    root.replaceChildren(h("section", { class: "panel notice-error", role: "alert" }, h("h1", {}, "No such conversation"), h("p", {}, error.message)));
    return;
  }
  new SessionPage(root, models, session).start();
}

/** A fresh Idempotency-Key (randomUUID needs a secure context: a LAN address over http is not one). */
function newKey() {
  return crypto.randomUUID?.() ?? `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

async function loadSession(sessionId) {
  return json(await fetch(`/api/v1/sessions/${encodeURIComponent(sessionId)}?format=json`));
}

class SessionPage {
  constructor(root, models, session) {
    this.root = root;
    this.models = models;
    this.session = session;
    this.turns = h("ol", { class: "turns", "aria-live": "polite" });
    this.streaming = new Map(); // council id -> {model, attempt, text}: the synthesis (or summary) so far
    this.group = session.mode === "group";
    this.closing = this.group ? session.rounds + 1 : SYNTHESIS; // the stage the chairman writes in
    this.live = new Map(); // group mode: council id -> Map("round:model" -> {round, model, attempt, text})
    this.message = h("p", { class: "message", role: "status" });
    this.question = h("textarea", { id: "next-question", rows: "3", required: true, placeholder: "Ask a follow-up question" });
    this.send = h("button", { type: "submit", class: "primary" }, "Send");
    this.form = h(
      "form",
      { class: "panel ask", "aria-labelledby": "next-title" },
      h("h2", { id: "next-title" }, "Your next question"),
      h("label", { for: "next-question", class: "visually-hidden" }, "Question"),
      this.question,
      h("div", { class: "controls" }, this.send, h("small", { class: "muted" }, "Ctrl+Enter (⌘+Enter) sends.")),
      this.message,
    );
  }

  start() {
    const s = this.session;
    const names = s.members.map((m) => nameOf(this.models, m)).join(", ");
    const meta = this.group
      ? [h("span", {}, `Group: ${names}`), h("span", {}, `${s.rounds} pass${s.rounds === 1 ? "" : "es"} per turn`), s.chairman ? h("span", {}, `Summaries by ${nameOf(this.models, s.chairman)}`) : null]
      : [h("span", {}, `Council: ${names}`), h("span", {}, `Chairman: ${nameOf(this.models, s.chairman)}`)];
    this.root.replaceChildren(
      h(
        "section",
        { class: "panel progress-header" },
        h("h1", {}, this.group ? "Group discussion" : "Conversation"),
        s.mission ? h("p", { class: "prompt mission" }, s.mission) : null,
        h("p", { class: "meta" }, ...meta, h("time", { datetime: s.created_at }, formatWhen(s.created_at))),
      ),
      this.turns,
      this.form,
    );
    this.render();
    this.question.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    const source = new EventSource(`/api/v1/sessions/${encodeURIComponent(s.session_id)}/events`);
    source.addEventListener("model.delta", (event) => this.delta(JSON.parse(event.data)));
    for (const kind of ["council.submitted", "council.started", ...TERMINAL]) {
      source.addEventListener(kind, () => this.refresh());
    }
  }

  delta(event) {
    if (this.group && event.data.stage < this.closing) return this.spoken(event);
    if (event.data.stage !== this.closing) return;
    const { model, attempt } = event.data;
    const current = this.streaming.get(event.council_id);
    const same = current && current.model === model && current.attempt === attempt; // a fallback or retry starts over
    const text = same ? current.text + event.data.text : event.data.text;
    this.streaming.set(event.council_id, { model, attempt, text });
    const answer = this.turns.querySelector(`[data-council-id="${CSS.escape(event.council_id)}"] .answer`);
    if (answer && answer.dataset.final !== "true") setText(answer, text); // as text until it is final
  }

  /** A token of a member's message in a group pass: its message so far, redrawn in place. */
  spoken(event) {
    const { stage: round, model, attempt, text } = event.data;
    const messages = this.live.get(event.council_id) ?? new Map();
    this.live.set(event.council_id, messages);
    const key = `${round}:${model}`;
    const current = messages.get(key);
    const same = current && current.attempt === attempt; // a retry starts over
    messages.set(key, { round, model, attempt, text: same ? current.text + text : text });
    const turn = this.session.turns.find((t) => t.council_id === event.council_id);
    const shown = this.turns.querySelector(`[data-council-id="${CSS.escape(event.council_id)}"] .discussion`);
    if (turn && shown && !turn.discussion) shown.replaceWith(this.discussion(turn));
  }

  /** A group turn's passes: from the finished turn's record, or live from the stream. */
  discussion(turn) {
    const final = Boolean(turn.discussion);
    const messages = final ? turn.discussion.messages : [...(this.live.get(turn.council_id)?.values() ?? [])];
    const rounds = [...new Set(messages.map((m) => m.round))].sort((a, b) => a - b);
    return h(
      "div",
      { class: "discussion" },
      rounds.map((round) =>
        h(
          "section",
          { class: "pass", "data-round": String(round) },
          h("h3", {}, `Pass ${round}`),
          h("ol", { class: "messages" }, messages.filter((m) => m.round === round).map((m) => this.messageItem(m, final))),
        ),
      ),
    );
  }

  messageItem(said, final) {
    const info = this.models.get(said.model);
    const color = info && COLOR.test(info.color) ? `--member-color: ${info.color}` : null;
    const text = h("div", { class: final ? "text markdown" : "text markdown live" });
    if (final) showMarkdown(text, said.text);
    else setText(text, said.text);
    const building = said.builds_on?.length ? h("span", { class: "builds-on" }, `builds on ${said.builds_on.map((m) => nameOf(this.models, m)).join(", ")}`) : null;
    return h(
      "li",
      { class: "group-message", "data-model": said.model, style: color },
      h("p", { class: "speaker" }, info?.icon ? h("span", { class: "icon", "aria-hidden": "true" }, info.icon) : null, h("strong", {}, nameOf(this.models, said.model)), building),
      text,
    );
  }

  async refresh() {
    try {
      this.session = await loadSession(this.session.session_id);
      this.render();
    } catch (error) {
      setText(this.message, `Could not reload the conversation: ${error.message}`);
    }
  }

  render() {
    const items = this.session.turns.map((turn) => this.turnItem(turn));
    this.turns.replaceChildren(...items);
    const running = this.session.turns.find((turn) => !["completed", "failed", "cancelled"].includes(turn.status));
    this.send.disabled = Boolean(running);
    if (running) setText(this.message, "The council is deliberating; you can ask again once it has answered.");
    else if (this.message.textContent.startsWith("The council is deliberating")) setText(this.message, "");
  }

  turnItem(turn) {
    const answer = h("div", { class: "answer markdown" });
    // A group turn's answer is its discussion, then the summary if a chairman writes one.
    const summarised = !this.group || Boolean(this.session.chairman);
    if (turn.final_answer !== null && !summarised) {
      answer.hidden = true;
      answer.dataset.final = "true";
    } else if (turn.final_answer !== null) {
      showMarkdown(answer, turn.final_answer);
      answer.dataset.final = "true";
    } else if (turn.status === "failed" || turn.status === "cancelled") {
      answer.append(h("p", { class: "error" }, `${turn.status}: ${turn.error ?? ""}`));
      answer.dataset.final = "true";
    } else {
      const waiting = this.group ? (summarised ? "The summary comes after the discussion…" : "") : "The council is deliberating…";
      setText(answer, this.streaming.get(turn.council_id)?.text ?? waiting);
    }
    const whole = this.group ? null : h("a", { href: `/councils/${encodeURIComponent(turn.council_id)}` }, "The whole deliberation");
    return h(
      "li",
      { class: "panel turn", "data-council-id": turn.council_id, "data-status": turn.status },
      h("p", { class: "question" }, h("strong", {}, "You: "), turn.question),
      h("div", { class: "meta" }, h("span", { class: "badge", "data-status": turn.status }, turn.status), whole),
      this.group ? this.discussion(turn) : null,
      answer,
    );
  }

  async ask() {
    const content = this.question.value;
    if (!content.trim()) return;
    this.send.disabled = true;
    setText(this.message, "Sending…");
    try {
      await json(
        await fetch(`/api/v1/sessions/${encodeURIComponent(this.session.session_id)}/messages`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
          body: JSON.stringify({ content }),
        }),
      );
      this.question.value = "";
      setText(this.message, "");
      await this.refresh();
    } catch (error) {
      setText(this.message, error.message);
      this.send.disabled = false;
    }
  }
}
