// The home page: ask a question (members and chairman from the catalogue), and the history.

import { catalogue, formatWhen, h, json, nameOf, setText } from "./dom.js";

const PAGE = 20;

/** Show the question form and the recent councils in ``root``. */
export async function showHome(root) {
  document.title = "council";
  let models;
  let config;
  try {
    [models, config] = await Promise.all([catalogue(), fetch("/api/config").then(json)]);
  } catch (error) {
    root.replaceChildren(h("section", { class: "panel notice-error", role: "alert" }, h("h1", {}, "The gateway is not ready"), h("p", {}, error.message)));
    return;
  }
  root.replaceChildren(askForm(models, config), conversations(config), history(models));
}

/** Start a conversation (the default council, a mission if given), and the recent ones. */
function conversations(config) {
  const mission = h("textarea", { id: "mission", rows: "2", maxlength: String(config.max_prompt_chars), placeholder: "What is the conversation for? (optional)" });
  const mode = h(
    "select",
    { id: "session-mode" },
    h("option", { value: "council" }, "Council: a synthesis of reviewed answers"),
    h("option", { value: "group" }, "Group discussion: the members answer each other"),
  );
  const start = h("button", { type: "submit" }, "Start a conversation");
  const message = h("p", { class: "message", role: "alert" });
  const form = h(
    "form",
    { class: "start-session" },
    h("label", { for: "mission" }, "Mission"),
    mission,
    h("label", { for: "session-mode" }, "Mode"),
    mode,
    h("div", { class: "controls" }, start),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    start.disabled = true;
    try {
      const body = { mode: mode.value, ...(mission.value.trim() ? { mission: mission.value } : {}) };
      const created = await json(await fetch("/api/v1/sessions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
      window.location.assign(`/sessions/${encodeURIComponent(created.session_id)}`);
    } catch (error) {
      setText(message, error.message);
      start.disabled = false;
    }
  });
  const list = h("ul", { class: "recent-sessions" });
  (async () => {
    try {
      const page = await json(await fetch("/api/v1/sessions?limit=10"));
      for (const session of page.sessions) {
        const label = session.mission || session.last_question || session.session_id;
        const turns = `${session.mode === "group" ? "group, " : ""}${session.turns} turn${session.turns === 1 ? "" : "s"}`;
        list.append(h("li", { "data-session-id": session.session_id }, h("a", { href: `/sessions/${encodeURIComponent(session.session_id)}` }, label), h("small", { class: "muted" }, ` ${turns}, ${formatWhen(session.updated_at)}`)));
      }
    } catch (error) {
      setText(message, `Could not load the conversations: ${error.message}`);
    }
  })();
  return h(
    "section",
    { class: "panel conversations", "aria-labelledby": "conversations-title" },
    h("h2", { id: "conversations-title" }, "Conversations"),
    h("p", { class: "muted" }, "Follow-up questions: each answer sees the conversation so far. A council synthesises reviewed answers; in a group discussion the members answer, then build on or challenge each other."),
    form,
    list,
  );
}

function askForm(models, config) {
  const message = h("p", { class: "message", role: "alert" });
  const question = h("textarea", {
    id: "question",
    name: "prompt",
    rows: "4",
    required: true,
    maxlength: String(config.max_prompt_chars),
    placeholder: "What should the council deliberate?",
    "aria-describedby": "question-hint",
  });
  const memberBoxes = [...models.values()].map((model) =>
    h(
      "label",
      { class: "choice" },
      h("input", { type: "checkbox", name: "members", value: model.id, checked: config.members.includes(model.id) }),
      h("span", {}, h("strong", {}, model.display_name), model.role ? h("small", {}, ` ${model.role}`) : null),
    ),
  );
  const chairman = h(
    "select",
    { id: "chairman", name: "chairman" },
    [...models.values()].map((model) => h("option", { value: model.id, selected: model.id === config.chairman }, `${model.display_name}${model.role ? ` — ${model.role}` : ""}`)),
  );
  const maxTokens = h("input", { id: "max-tokens", name: "max_tokens", type: "number", min: "1", step: "1", value: String(config.max_tokens) });
  const temperature = h("input", { id: "temperature", name: "temperature", type: "number", min: "0", max: "2", step: "0.1", value: String(config.temperature) });
  const submit = h("button", { type: "submit", class: "primary" }, "Ask the council");
  const form = h(
    "form",
    { class: "panel ask", "aria-labelledby": "ask-title" },
    h("h1", { id: "ask-title" }, "Ask the council"),
    h("label", { for: "question" }, "Question"),
    question,
    h("small", { id: "question-hint", class: "muted" }, "Ctrl+Enter (⌘+Enter) asks."),
    h("fieldset", {}, h("legend", {}, "Members"), h("div", { class: "choices" }, memberBoxes)),
    h("label", { for: "chairman" }, "Chairman"),
    chairman,
    h(
      "details",
      {},
      h("summary", {}, "Advanced"),
      h("div", { class: "advanced" }, h("label", { for: "max-tokens" }, "Max tokens"), maxTokens, h("label", { for: "temperature" }, "Temperature"), temperature),
    ),
    h("div", { class: "controls" }, submit),
    message,
  );
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const members = memberBoxes.map((label) => label.querySelector("input")).filter((box) => box.checked).map((box) => box.value);
    if (!members.length) {
      setText(message, "Pick at least one member.");
      return;
    }
    submit.disabled = true;
    setText(message, "Submitting…");
    try {
      const body = { prompt: question.value, models: members, chairman: chairman.value };
      if (maxTokens.value !== "") body.max_tokens = Number(maxTokens.value);
      if (temperature.value !== "") body.temperature = Number(temperature.value);
      const accepted = await json(
        await fetch("/api/v1/council/query", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }),
      );
      window.location.assign(`/councils/${encodeURIComponent(accepted.council_id)}`);
    } catch (error) {
      setText(message, error.message);
      submit.disabled = false;
    }
  });
  return form;
}

const REFRESH_MS = 2000;

function history(models) {
  const rows = h("tbody", {});
  const shown = new Map(); // council_id → its row, so a refresh updates rows in place
  const empty = h("p", { class: "muted", hidden: true }, "No councils yet: ask the first question above.");
  const more = h("button", { type: "button", hidden: true }, "Older councils");
  const message = h("p", { class: "message", role: "status" });
  let before = null;
  const rowOf = (council) =>
    h(
      "tr",
      { "data-council-id": council.council_id },
      h("td", { class: "prompt-cell" }, h("a", { href: `/councils/${encodeURIComponent(council.council_id)}` }, council.prompt)),
      h("td", {}, h("span", { class: "badge", "data-status": council.status }, council.status)),
      h("td", {}, h("time", { datetime: council.created_at }, formatWhen(council.created_at))),
      h("td", {}, nameOf(models, council.chairman)),
    );
  const place = (councils, atTop) => {
    const fresh = [];
    for (const council of councils) {
      const row = rowOf(council);
      const old = shown.get(council.council_id);
      shown.set(council.council_id, row);
      if (old) old.replaceWith(row);
      else fresh.push(row);
    }
    if (atTop) rows.prepend(...fresh);
    else rows.append(...fresh);
    empty.hidden = rows.children.length > 0;
  };
  const load = async () => {
    more.disabled = true;
    try {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (before) query.set("before", before);
      const page = await json(await fetch(`/api/v1/councils?${query}`));
      place(page.councils, false);
      before = page.next;
      more.hidden = !page.next;
      setText(message, "");
    } catch (error) {
      setText(message, `Could not load the history: ${error.message}`);
    }
    more.disabled = false;
  };
  // The newest page again every few seconds: councils started elsewhere appear, statuses move.
  const refresh = async () => {
    if (!rows.isConnected) return clearInterval(timer);
    if (document.hidden) return;
    try {
      const page = await json(await fetch(`/api/v1/councils?limit=${PAGE}`));
      place(page.councils, true);
    } catch {
      // the next refresh tries again; the first load reports errors
    }
  };
  const timer = setInterval(refresh, REFRESH_MS);
  more.addEventListener("click", load);
  load();
  return h(
    "section",
    { class: "panel history", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "Recent councils"),
    h("div", { class: "table-scroll" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Question"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Created"), h("th", { scope: "col" }, "Chairman"))), rows)),
    empty,
    more,
    message,
  );
}
