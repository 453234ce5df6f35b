// The message editor's live preview and placeholder buttons. Loaded as a module from 'self' (the
// CSP allows no inline script); the page works without it ("Check and preview" asks the server).
//
// As the admin types, the draft is posted (debounced, the previous request aborted) to the
// preview endpoint, which answers an HTML fragment: the draft filled with sample facts, the
// check's messages and the SMS segments. Nothing is saved. Placeholder buttons put a placeholder
// at the caret of the field last used.

const form = document.getElementById("template-form");
if (form) {
  const url = form.dataset.previewUrl;
  const area = document.getElementById("preview");
  const status = document.getElementById("preview-status");
  const fields = Array.from(form.querySelectorAll("input[name=subject]:not([type=hidden]), textarea[name=body]"));
  let lastField = form.querySelector("textarea[name=body]");
  let timer = null;
  let inFlight = null;
  let lastSent = "";

  function say(message) {
    status.textContent = "";
    window.setTimeout(() => { status.textContent = message; }, 50);
  }

  async function refresh() {
    const data = new FormData(form);
    data.delete("action");
    const key = JSON.stringify(Array.from(data.entries()).filter(([name]) => name !== "csrfmiddlewaretoken"));
    if (key === lastSent) return;
    lastSent = key;
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    area.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
        signal: controller.signal,
      });
      if (!response.ok) {
        say(`The preview could not be updated (${response.status}).`);
        return;
      }
      const html = await response.text();
      const fragment = new DOMParser().parseFromString(html, "text/html");
      area.replaceChildren(...fragment.body.childNodes);
      const preview = area.querySelector("[data-ok]");
      if (preview) say(preview.dataset.ok === "true" ? "Preview updated: passes the check." : "Preview updated: the check found problems.");
    } catch (error) {
      if (error.name !== "AbortError") say("The preview could not be updated.");
    } finally {
      if (inFlight === controller) {
        inFlight = null;
        area.removeAttribute("aria-busy");
      }
    }
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  }

  for (const field of fields) {
    field.addEventListener("input", later);
    field.addEventListener("focus", () => { lastField = field; });
  }

  for (const button of form.ownerDocument.querySelectorAll("button[data-insert]")) {
    button.hidden = false;
    const text = button.nextElementSibling;
    if (text && text.classList.contains("chip-text")) text.hidden = true;
    button.addEventListener("click", () => {
      const field = lastField;
      const start = field.selectionStart ?? field.value.length;
      const end = field.selectionEnd ?? field.value.length;
      field.setRangeText(button.dataset.insert, start, end, "end");
      field.focus();
      field.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  // The preview follows the typing: the server round trip button is for pages without script.
  const check = document.getElementById("check-button");
  if (check) check.hidden = true;
}
