// Small DOM helpers: every text goes in as text, never as HTML (only markdown.js writes HTML).

/** An element with attributes (``on*`` functions become listeners) and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

/** Set an element's text only when it changed (keeps selections and screen readers calm). */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** The JSON body of a response, or an Error carrying the problem's detail (a 401 also asks for a key). */
export async function json(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : { detail: await response.text() };
  if (response.status === 401) askForKey();
  if (!response.ok) {
    const error = new Error(body.detail || body.title || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

/** The catalogue as a map from model id to {display_name, role}. */
export async function catalogue() {
  const models = await json(await fetch("/api/v1/models"));
  return new Map(models.map((model) => [model.id, model]));
}

/** How a model is called on the page. */
export function nameOf(models, id) {
  return models.get(id)?.display_name || id;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatCost(usd) {
  if (!usd) return "$0";
  return usd < 0.01 ? `$${usd.toFixed(5)}` : `$${usd.toFixed(3)}`;
}

export function formatElapsed(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(seconds / 60);
  return minutes ? `${minutes}m ${String(seconds % 60).padStart(2, "0")}s` : `${seconds}s`;
}

export function formatWhen(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Ask for an API key (the gateway wants one), have the gateway keep it as this page's cookie, reload. */
export function askForKey() {
  if (document.getElementById("key-prompt")) return;
  const input = h("input", { type: "password", id: "api-key", autocomplete: "off", spellcheck: "false", placeholder: "ck_…", required: true });
  const status = h("p", { class: "key-status", role: "status" });
  const form = h(
    "form",
    {
      id: "key-prompt",
      class: "panel key-prompt",
      onsubmit: async (event) => {
        event.preventDefault();
        const response = await fetch("/api/v1/auth/cookie", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ key: input.value.trim() }),
        });
        if (response.ok) window.location.reload();
        else setText(status, "That key was not accepted: it is unknown, mistyped or revoked.");
      },
    },
    h("h2", {}, "This council needs an API key"),
    h("p", {}, "Ask whoever runs it for one (council keys create). The page keeps it in a cookie only the gateway can read."),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("button", { type: "submit" }, "Use this key"),
    status,
  );
  document.body.prepend(form);
  input.focus();
}
