// The case page's keyboard and live hint. Loaded as a module from 'self' (the CSP allows no inline
// script); the page works without it (every step is a form).
//
// Keys: c claims, n goes to the note, v to the reveal form, p to the next unchecked playbook step,
// s to the status, r to the outcome, ! to the security concern, ? shows the help. None while typing
// in a field or with Ctrl, Alt or Meta held.
// Live: desk_live.js dispatches `desk:case-changed` (detail: {queue, cases}); when this case is
// among them with a change committed after the page was rendered, the page says so with a link to
// reload (it never reloads by itself: a note being typed would be lost).
import "./desk_live.js";

const page = document.querySelector("[data-case-id]");
if (page) {
  const caseId = Number(page.dataset.caseId);
  const dialog = document.getElementById("shortcuts");
  const status = document.getElementById("shortcut-status");
  const changed = document.getElementById("case-changed");
  const helpButton = document.getElementById("help-open");

  function say(message) {
    status.textContent = ""; // cleared first so that the same message twice is announced twice
    window.setTimeout(() => { status.textContent = message; }, 50);
  }

  function typing(target) {
    return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
  }

  function focusOn(id, missing) {
    const element = document.getElementById(id);
    if (!element) return say(missing);
    element.scrollIntoView({ block: "center" });
    element.focus();
  }

  const keys = {
    c: () => {
      const form = document.getElementById("claim-form");
      if (!form) return say("You hold this case already, or it cannot be claimed.");
      form.requestSubmit();
    },
    n: () => focusOn("id_body", "Notes cannot be added here."),
    v: () => focusOn("id_field", "Your role may not reveal here."),
    s: () => focusOn("id_status", "The status cannot change now."),
    r: () => focusOn("id_outcome", "This case cannot be resolved now."),
    "!": () => focusOn("id_kind", "Concerns cannot be reported here."),
    p: () => {
      const next = document.querySelector(".playbook-step:not(.done) .check-form button");
      if (!next) return say("Every playbook step is done.");
      next.scrollIntoView({ block: "center" });
      next.focus();
    },
    "?": () => { if (!dialog.open) dialog.showModal(); },
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (dialog.open || typing(event.target)) return;
    const run = keys[event.key];
    if (!run) return;
    event.preventDefault();
    run();
  });

  // A change committed before this page was rendered is on it already (the user's own step, whose
  // signal arrives after the redirect): only a later one says the case changed.
  const renderedAt = Number(page.dataset.renderedAt) || 0;
  document.addEventListener("desk:case-changed", (event) => {
    const later = (c) => c.id === caseId && !(typeof c.at === "number" && c.at <= renderedAt);
    if (event.detail.cases.some(later)) changed.hidden = false;
  });

  // Submitting twice (a key held, a double click) would record twice what was meant once: send once.
  for (const form of page.querySelectorAll("form")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      if (button) window.setTimeout(() => button.setAttribute("disabled", ""), 0);
    });
  }

  // A refused step shows its reason next to its form, which may be far down the page (a phone's
  // width): bring it into view, where a screen reader has announced it already (role=alert).
  const refusal = page.querySelector(".form-errors[role=alert]");
  if (refusal) refusal.scrollIntoView({ block: "center" });

  helpButton.hidden = false;
  helpButton.addEventListener("click", () => dialog.showModal());
}
