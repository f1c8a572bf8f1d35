// Model output is untrusted: markdown goes to HTML with marked, and only DOMPurify's output reaches the page.
import { marked } from "./vendor/marked-18.3.0.esm.js";
import DOMPurify from "./vendor/purify-3.5.0.es.js";

marked.setOptions({ gfm: true, breaks: false });

// Links open in a new tab, without handing the opener to the page they lead to.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Sanitized HTML for a markdown text. */
export function renderMarkdown(text) {
  const html = marked.parse(text ?? "", { async: false });
  return DOMPurify.sanitize(html, { FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"] });
}

/** Put the sanitized rendering of ``text`` into ``element``. */
export function showMarkdown(element, text) {
  element.innerHTML = renderMarkdown(text);
}
