// A conversation's page: every turn's question and the council's answer, the chairman's answer
// streaming in as it is written, and the next question. Follows the session's one event stream
// with EventSource (which resumes from Last-Event-ID by itself); the answers are untrusted
// model output, shown only through markdown.js.

import { catalogue, formatWhen, h, json, nameOf, setText } from "./dom.js";
import { showMarkdown } from "./markdown.js";

const TERMINAL = new Set(["council.completed", "council.failed", "council.cancelled"]);
const SYNTHESIS = 3;

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
    this.streaming = new Map(); // council id -> {model, attempt, text}: the synthesis so far
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
    const panel = nameOf(this.models, s.chairman);
    this.root.replaceChildren(
      h(
        "section",
        { class: "panel progress-header" },
        h("h1", {}, "Conversation"),
        s.mission ? h("p", { class: "prompt mission" }, s.mission) : null,
        h("p", { class: "meta" }, h("span", {}, `Council: ${s.members.map((m) => nameOf(this.models, m)).join(", ")}`), h("span", {}, `Chairman: ${panel}`), h("time", { datetime: s.created_at }, formatWhen(s.created_at))),
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
    if (event.data.stage !== SYNTHESIS) return;
    const { model, attempt } = event.data;
    const current = this.streaming.get(event.council_id);
    const same = current && current.model === model && current.attempt === attempt; // a fallback or retry starts over
    const text = same ? current.text + event.data.text : event.data.text;
    this.streaming.set(event.council_id, { model, attempt, text });
    const answer = this.turns.querySelector(`[data-council-id="${CSS.escape(event.council_id)}"] .answer`);
    if (answer && answer.dataset.final !== "true") setText(answer, text); // as text until it is final
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
    if (turn.final_answer !== null) {
      showMarkdown(answer, turn.final_answer);
      answer.dataset.final = "true";
    } else if (turn.status === "failed" || turn.status === "cancelled") {
      answer.append(h("p", { class: "error" }, `${turn.status}: ${turn.error ?? ""}`));
      answer.dataset.final = "true";
    } else {
      setText(answer, this.streaming.get(turn.council_id)?.text ?? "The council is deliberating…");
    }
    return h(
      "li",
      { class: "panel turn", "data-council-id": turn.council_id, "data-status": turn.status },
      h("p", { class: "question" }, h("strong", {}, "You: "), turn.question),
      h("div", { class: "meta" }, h("span", { class: "badge", "data-status": turn.status }, turn.status), h("a", { href: `/councils/${encodeURIComponent(turn.council_id)}` }, "The whole deliberation")),
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
