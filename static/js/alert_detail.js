// The alert page's keyboard: a acknowledges, r and d go to the resolve and dismiss notes (where
// Ctrl+Enter sends the note), o opens the customer's case, ? shows the help. Loaded as a module
// from 'self' (the CSP allows no inline script). The page works without it.
// It also tells the live channel that this alert is open here, so the queue shows who is on it.
import { viewing } from "./desk_live.js";

const page = document.querySelector("[data-alert-id]");
if (page) viewing(Number(page.dataset.alertId));

const status = document.getElementById("shortcut-status");
// Someone else holds the alert: the page offers no step, and a shortcut says whose it is.
const heldBy = page ? page.dataset.heldBy : undefined;
const unavailable = (step) => say(heldBy ? `${heldBy} holds this alert.` : `This alert cannot be ${step} now.`);
const dialog = document.getElementById("shortcuts");
const helpButton = document.getElementById("help-open");

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
}

function say(message) {
  // Cleared first so that the same message twice is announced twice.
  status.textContent = "";
  window.setTimeout(() => { status.textContent = message; }, 50);
}

function openHelp() {
  if (!dialog.open) dialog.showModal();
}

const steps = {
  a: () => {
    const form = document.getElementById("acknowledge-form");
    if (!form) return unavailable("acknowledged");
    form.querySelector("button[type=submit]").focus();
    form.requestSubmit();
  },
  r: () => {
    const note = document.getElementById("resolve-note");
    if (!note) return unavailable("resolved");
    note.focus();
  },
  d: () => {
    const note = document.getElementById("dismiss-note");
    if (!note) return unavailable("dismissed");
    note.focus();
  },
  o: () => {
    const form = document.getElementById("case-form");
    if (!form) return say("No case can be opened from this alert.");
    form.querySelector("button[type=submit]").focus();
    form.requestSubmit();
  },
  "?": openHelp,
};

// In a note, Ctrl+Enter (Cmd+Enter on a Mac) sends it: the hands stay on the keyboard.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.repeat) return;
  const form = event.target instanceof HTMLElement && event.target.closest("form.step");
  if (!form || !event.target.matches("textarea")) return;
  event.preventDefault();
  form.requestSubmit();
});

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (dialog.open || typing(event.target)) return;
  const step = steps[event.key];
  if (!step) return;
  event.preventDefault();
  step();
});

// Submitting twice (a key held, a double click) would answer "already acknowledged": send once.
for (const form of document.querySelectorAll("form.step")) {
  form.addEventListener("submit", () => {
    window.setTimeout(() => form.querySelector("button[type=submit]").setAttribute("disabled", ""), 0);
  });
}

helpButton.hidden = false;
helpButton.addEventListener("click", openHelp);
