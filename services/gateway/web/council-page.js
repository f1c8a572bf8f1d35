// A council's page: follows /events with EventSource (which resumes from Last-Event-ID by itself)
// and redraws what changed once per animation frame.

import { catalogue, formatCost, formatElapsed, formatMs, h, json, nameOf, setText } from "./dom.js";
import { showMarkdown } from "./markdown.js";
import { EVENT_TYPES, STAGE_NAMES, TERMINAL, apply, emptyView, progress, skippable } from "./view.js";

const ICONS = { pending: "○", generating: "◐", completed: "✓", failed: "✕", skipped: "⤼" };
const STATUS_WORDS = { pending: "pending", generating: "generating", completed: "done", failed: "failed", skipped: "skipped" };
const FAILURE_WORDS = {
  timeout: "timed out",
  rate_limited: "rate limited by the provider",
  auth_failed: "the provider refused the API key",
  bad_request: "the provider rejected the request",
  not_found: "the provider does not know this model",
  refused: "the model refused to answer",
  provider_error: "the provider had an error",
  connection: "could not reach the provider",
  malformed_stream: "the provider's answer was garbled",
  cancelled: "cancelled",
  no_answers: "no member answered",
  internal: "internal error",
};

/** Show the council ``councilId`` in ``root`` and follow it live until it ends. */
export async function showCouncil(root, councilId) {
  document.title = `Council ${councilId}`;
  let models;
  try {
    models = await catalogue();
    await json(await fetch(`/api/v1/council/${encodeURIComponent(councilId)}?format=json`));
  } catch (error) {
    root.replaceChildren(
      h("section", { class: "panel notice-error", role: "alert" }, h("h1", {}, "Council not available"), h("p", {}, error.message), h("p", {}, h("a", { href: "/" }, "Ask a new question"))),
    );
    return;
  }
  const page = new CouncilPage(root, councilId, models);
  page.follow();
}

class CouncilPage {
  constructor(root, councilId, models) {
    this.councilId = councilId;
    this.models = models;
    this.view = emptyView(councilId);
    this.cards = new Map(); // "stage:model" -> {element, parts, version}
    this.selectedReviewer = null;
    this.frame = null;
    this.build(root);
  }

  build(root) {
    const id = this.councilId;
    this.parts = {
      prompt: h("p", { class: "prompt" }),
      status: h("span", { class: "badge", "data-role": "status" }),
      stage: h("span", { "data-role": "stage" }),
      counts: h("span", { "data-role": "counts" }),
      elapsed: h("span", { "data-role": "elapsed" }),
      tokens: h("span", { "data-role": "tokens" }),
      cost: h("span", { "data-role": "cost" }),
      connection: h("span", { class: "connection", "data-role": "connection", role: "status" }, "connecting…"),
      bar: h("div", { class: "bar-fill" }),
      notice: h("p", { class: "notice", role: "alert", hidden: true }),
      message: h("p", { class: "message", role: "status" }),
      cancel: h("button", { type: "button", class: "danger", onclick: () => this.cancel() }, "Cancel council"),
      results: h(
        "div",
        { class: "result-actions", hidden: true },
        h("button", { type: "button", onclick: () => this.copyMarkdown() }, "Copy as markdown"),
        h("a", { class: "button", href: `/api/v1/council/${id}?format=markdown`, download: `${id}.md` }, "Download .md"),
        h("a", { class: "button", href: `/api/v1/council/${id}?format=json`, download: `${id}.json` }, "Download .json"),
      ),
      stage1: h("div", { class: "cards" }),
      tabs: h("div", { class: "tabs", role: "tablist", "aria-label": "Reviews" }),
      review: h("div", { class: "tab-panel", role: "tabpanel" }),
      aggregate: h("div", { class: "aggregate" }),
      chairman: h("p", { class: "byline" }),
      synthesis: h("div", { class: "markdown synthesis", "aria-live": "polite" }),
      synthesisState: h("p", { class: "error" }),
    };
    const p = this.parts;
    this.sections = {
      2: h("section", { class: "stage", id: "stage-2", hidden: true }, h("h2", {}, STAGE_NAMES[2]), p.tabs, p.review, p.aggregate),
      3: h("section", { class: "stage", id: "stage-3", hidden: true }, h("h2", {}, STAGE_NAMES[3]), p.chairman, p.synthesisState, p.synthesis),
    };
    this.root = h(
      "div",
      { class: "council", "data-council-id": id },
      h(
        "header",
        { class: "panel progress-header" },
        p.prompt,
        h("div", { class: "meta" }, p.status, p.stage, p.counts, p.elapsed, p.tokens, p.cost, p.connection),
        h("div", { class: "bar", role: "progressbar", "aria-label": "Progress" }, p.bar),
        h("div", { class: "controls" }, p.cancel, p.results),
        p.notice,
        p.message,
      ),
      h("section", { class: "stage", id: "stage-1" }, h("h2", {}, STAGE_NAMES[1]), p.stage1),
      this.sections[2],
      this.sections[3],
    );
    root.replaceChildren(this.root);
    this.render();
  }

  follow() {
    const source = new EventSource(`/api/v1/council/${encodeURIComponent(this.councilId)}/events`);
    this.source = source;
    const received = (message) => {
      const event = JSON.parse(message.data);
      if (apply(this.view, event)) this.schedule();
      if (TERMINAL.has(event.type)) this.stop("ended");
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, received);
    source.onopen = () => this.connection("live");
    source.onerror = () => {
      // EventSource reconnects by itself, sending the last id it saw; CLOSED means it gave up.
      if (source.readyState === EventSource.CLOSED) this.connection(TERMINAL.has(`council.${this.view.status}`) ? "ended" : "disconnected");
      else this.connection("reconnecting…");
    };
    this.timer = setInterval(() => this.renderClock(), 1000);
  }

  stop(state) {
    this.source?.close();
    clearInterval(this.timer);
    this.connection(state);
    this.schedule();
  }

  connection(state) {
    setText(this.parts.connection, state);
    this.root.dataset.connection = state;
  }

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.render());
  }

  async post(path, body) {
    const response = await fetch(`/api/v1/council/${this.councilId}/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
    return json(response);
  }

  async cancel() {
    this.parts.cancel.disabled = true;
    try {
      await this.post("cancel");
      setText(this.parts.message, "Cancelling… the members still running are being stopped.");
    } catch (error) {
      setText(this.parts.message, `Could not cancel: ${error.message}`);
      this.parts.cancel.disabled = false;
    }
  }

  async skip(model, button) {
    button.disabled = true;
    try {
      await this.post("skip", { model });
      setText(this.parts.message, `Skipping ${nameOf(this.models, model)}…`);
    } catch (error) {
      setText(this.parts.message, `Could not skip ${nameOf(this.models, model)}: ${error.message}`);
      button.disabled = false;
    }
  }

  async copyMarkdown() {
    try {
      const response = await fetch(`/api/v1/council/${this.councilId}?format=markdown`);
      await navigator.clipboard.writeText(await response.text());
      setText(this.parts.message, "Copied the result as markdown.");
    } catch (error) {
      setText(this.parts.message, `Could not copy: ${error.message}`);
    }
  }

  // ---- drawing ---------------------------------------------------------------------------------

  render() {
    this.frame = null;
    const view = this.view;
    const p = this.parts;
    const finished = TERMINAL.has(`council.${view.status}`);
    this.root.dataset.status = view.status;
    this.root.dataset.lastSeq = String(view.lastSeq);
    setText(p.prompt, view.prompt || (view.agedOut ? "(the question has aged out of the log)" : ""));
    setText(p.status, view.status);
    p.status.dataset.status = view.status;
    setText(p.stage, finished ? "Finished" : STAGE_NAMES[view.stage]);
    const numbers = progress(view);
    setText(p.counts, `${numbers.answered}/${numbers.members} models answered • ${numbers.reviewed}/${numbers.reviewers || numbers.answered || numbers.members} reviews completed`);
    setText(p.tokens, `${numbers.tokens.toLocaleString()} tokens`);
    setText(p.cost, formatCost(numbers.costUsd));
    this.renderClock();
    const done = numbers.answered + numbers.reviewed + (view.stages[3]?.completedAt ? 1 : 0);
    const total = numbers.members + (numbers.reviewers || numbers.members) + 1;
    const fraction = finished ? 1 : Math.min(0.99, done / Math.max(1, total));
    p.bar.style.width = `${Math.round(fraction * 100)}%`;
    p.bar.parentElement.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
    p.cancel.hidden = finished || view.cancelRequested;
    p.results.hidden = view.status !== "completed";
    if (view.failure) {
      p.notice.hidden = false;
      setText(p.notice, view.status === "cancelled" ? `Cancelled: ${view.failure.reason}` : `Failed (${FAILURE_WORDS[view.failure.kind] || view.failure.kind}): ${view.failure.reason}`);
    }
    this.renderMembers(1, p.stage1);
    this.renderReviews();
    this.renderSynthesis();
  }

  renderClock() {
    const view = this.view;
    if (!view.createdAt) return;
    const end = view.finishedAt ? Date.parse(view.finishedAt) : Date.now();
    setText(this.parts.elapsed, formatElapsed(end - Date.parse(view.createdAt)));
  }

  /** One card per member of a stage, updated in place. */
  renderMembers(stageNumber, container) {
    const stage = this.view.stages[stageNumber];
    const members = stage ? stage.members : stageNumber === 1 ? this.view.members : [];
    for (const model of members) {
      const run = stage?.runs[model] ?? { model, status: "pending", text: "", tokens: 0, version: 0 };
      const card = this.card(stageNumber, model, container);
      this.fillCard(card, stageNumber, run);
    }
  }

  card(stageNumber, model, container) {
    const key = `${stageNumber}:${model}`;
    let card = this.cards.get(key);
    if (card) return card;
    const info = this.models.get(model);
    const parts = {
      icon: h("span", { class: "icon", "aria-hidden": "true" }),
      state: h("span", { class: "state" }),
      tokens: h("dd", { "data-role": "tokens" }),
      latency: h("dd", { "data-role": "latency" }),
      ttft: h("dd", { "data-role": "ttft" }),
      cost: h("dd", { "data-role": "cost" }),
      error: h("p", { class: "error", hidden: true }),
      answer: h("div", { class: "markdown answer" }),
      skip: h("button", { type: "button", class: "skip", hidden: true }, "Skip this member"),
    };
    parts.skip.addEventListener("click", () => this.skip(model, parts.skip));
    const element = h(
      "article",
      { class: "member", "data-model": model, "data-stage": stageNumber },
      h("header", {}, parts.icon, h("h3", {}, nameOf(this.models, model)), info?.role ? h("span", { class: "role" }, info.role) : null, parts.state),
      h("dl", { class: "stats" }, h("dt", {}, "tokens"), parts.tokens, h("dt", {}, "latency"), parts.latency, h("dt", {}, "first token"), parts.ttft, h("dt", {}, "cost"), parts.cost),
      parts.error,
      parts.answer,
      parts.skip,
    );
    container.append(element);
    card = { element, parts, version: -1 };
    this.cards.set(key, card);
    return card;
  }

  fillCard(card, stageNumber, run) {
    const { element, parts } = card;
    element.dataset.status = run.status;
    setText(parts.icon, ICONS[run.status]);
    setText(parts.state, run.retrying ? "retrying" : STATUS_WORDS[run.status]);
    setText(parts.tokens, String(run.tokens || 0));
    setText(parts.latency, formatMs(run.latencyMs));
    setText(parts.ttft, formatMs(run.ttftMs));
    setText(parts.cost, run.usage ? formatCost(run.usage.cost_usd) : "–");
    const problem = run.error ? (run.retrying ? `Retrying after an error: ${run.error}` : run.error) : "";
    parts.error.hidden = !problem;
    setText(parts.error, problem);
    parts.skip.hidden = !skippable(this.view, stageNumber, run);
    if (card.version !== run.version) {
      card.version = run.version;
      showMarkdown(parts.answer, run.text);
    }
  }

  renderReviews() {
    const stage = this.view.stages[2];
    const section = this.sections[2];
    section.hidden = !stage;
    if (!stage) return;
    const p = this.parts;
    if (!this.selectedReviewer || !stage.members.includes(this.selectedReviewer)) this.selectedReviewer = stage.members[0];
    const tabs = stage.members.map((reviewer) => {
      const run = stage.runs[reviewer];
      const selected = reviewer === this.selectedReviewer;
      return h(
        "button",
        {
          type: "button",
          role: "tab",
          id: `tab-${reviewer}`,
          "aria-selected": selected ? "true" : "false",
          tabindex: selected ? "0" : "-1",
          "data-reviewer": reviewer,
          "data-status": run.status,
          onclick: () => this.selectReviewer(reviewer),
          onkeydown: (event) => this.tabKey(event, stage.members, reviewer),
        },
        `${ICONS[run.status]} ${nameOf(this.models, reviewer)}`,
      );
    });
    const signature = tabs.map((tab) => `${tab.dataset.reviewer}:${tab.dataset.status}:${tab.getAttribute("aria-selected")}`).join("|");
    if (p.tabs.dataset.signature !== signature) {
      const focused = document.activeElement?.dataset?.reviewer;
      p.tabs.replaceChildren(...tabs);
      p.tabs.dataset.signature = signature;
      if (focused) p.tabs.querySelector(`[data-reviewer="${CSS.escape(focused)}"]`)?.focus();
    }
    this.renderReviewPanel(stage);
    this.renderAggregate();
  }

  selectReviewer(reviewer) {
    this.selectedReviewer = reviewer;
    this.parts.tabs.dataset.signature = "";
    this.parts.review.dataset.shown = "";
    this.render();
  }

  tabKey(event, reviewers, reviewer) {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = reviewers[(reviewers.indexOf(reviewer) + step + reviewers.length) % reviewers.length];
    this.selectReviewer(next);
    this.parts.tabs.querySelector(`[data-reviewer="${CSS.escape(next)}"]`)?.focus();
  }

  renderReviewPanel(stage) {
    const reviewer = this.selectedReviewer;
    const run = stage.runs[reviewer];
    const ballot = this.view.ballots[reviewer];
    const panel = this.parts.review;
    panel.setAttribute("aria-labelledby", `tab-${reviewer}`);
    const shown = `${reviewer}:${run.version}:${run.status}:${ballot ? 1 : 0}:${skippable(this.view, 2, run)}`;
    if (panel.dataset.shown === shown) return;
    panel.dataset.shown = shown;
    const answer = h("div", { class: "markdown answer" });
    showMarkdown(answer, run.text);
    const skip = h("button", { type: "button", class: "skip", hidden: !skippable(this.view, 2, run) }, "Skip this member");
    skip.addEventListener("click", () => this.skip(reviewer, skip));
    let labels = null;
    let ranking = null;
    if (ballot) {
      labels = h(
        "div",
        { class: "labels" },
        h("h4", {}, `What ${nameOf(this.models, reviewer)} saw`),
        h("ul", {}, Object.entries(ballot.labels).sort().map(([label, model]) => h("li", {}, h("strong", {}, `Response ${label}`), ` → ${nameOf(this.models, model)}`))),
      );
      ranking = ballot.parse_ok
        ? h("div", { class: "ranking" }, h("h4", {}, "Its ranking"), h("ol", {}, ballot.ranking.map((model) => h("li", {}, nameOf(this.models, model)))))
        : h("p", { class: "error ranking" }, "Its ranking could not be parsed: this review does not count in the aggregate.");
    }
    const problem = run.error ? h("p", { class: "error" }, run.retrying ? `Retrying after an error: ${run.error}` : run.error) : null;
    panel.replaceChildren(
      h("p", { class: "byline" }, `${ICONS[run.status]} ${STATUS_WORDS[run.status]} · ${run.tokens || 0} tokens · ${formatMs(run.latencyMs)}`),
      problem ?? "",
      labels ?? "",
      ranking ?? "",
      answer,
      skip,
    );
  }

  renderAggregate() {
    const entries = this.view.aggregate;
    const container = this.parts.aggregate;
    const signature = JSON.stringify(entries);
    if (container.dataset.signature === signature) return;
    container.dataset.signature = signature;
    if (!entries.length) {
      container.replaceChildren();
      return;
    }
    container.replaceChildren(
      h("h3", {}, "Aggregate ranking"),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Rank"), h("th", { scope: "col" }, "Member"), h("th", { scope: "col" }, "Borda score"), h("th", { scope: "col" }, "Mean rank"), h("th", { scope: "col" }, "Votes"))),
        h(
          "tbody",
          {},
          entries.map((entry, index) =>
            h("tr", {}, h("td", {}, String(index + 1)), h("td", {}, nameOf(this.models, entry.model)), h("td", {}, entry.borda.toFixed(2)), h("td", {}, entry.mean_rank === null ? "–" : entry.mean_rank.toFixed(2)), h("td", {}, String(entry.votes))),
          ),
        ),
      ),
    );
  }

  renderSynthesis() {
    const view = this.view;
    const stage = view.stages[3];
    this.sections[3].hidden = !stage;
    if (!stage) return;
    const runs = stage.members.map((model) => stage.runs[model]);
    const writing = runs.find((run) => run.status === "completed") ?? runs.find((run) => run.status === "generating") ?? runs[runs.length - 1];
    const requested = view.chairman;
    const fallback = view.result ? view.result.stage3.fallback_used : writing.model !== requested;
    setText(
      this.parts.chairman,
      fallback
        ? `Written by ${nameOf(this.models, writing.model)}, the fallback chairman (${nameOf(this.models, requested)} could not write it) · ${STATUS_WORDS[writing.status]}`
        : `Written by the chairman, ${nameOf(this.models, writing.model)} · ${STATUS_WORDS[writing.status]}`,
    );
    const failed = runs.filter((run) => run.error).map((run) => `${nameOf(this.models, run.model)}: ${run.retrying ? "retrying after " : ""}${run.error}`);
    this.parts.synthesisState.hidden = !failed.length;
    setText(this.parts.synthesisState, failed.join(" · "));
    const key = `${writing.model}:${writing.version}`;
    if (this.parts.synthesis.dataset.shown !== key) {
      this.parts.synthesis.dataset.shown = key;
      showMarkdown(this.parts.synthesis, view.result ? view.result.stage3.synthesis : writing.text);
    }
  }
}
