// The alert page's keyboard: a acknowledges, r and d go to the resolve and dismiss notes (where
// Ctrl+Enter sends the note), o opens the customer's case, ? shows the help. Loaded as a module
// from 'self' (the CSP allows no inline script). The page works without it.
// It also tells the live channel that this alert is open here, so the queue shows who is on it, and
// refreshes the alert's status, assignee and actions when a live signal says it changed (claimed,
// released, acknowledged, resolved or dismissed by someone else): see refreshActions below.
import { viewing } from "./desk_live.js";

const page = document.querySelector("[data-alert-id]");
if (page) viewing(Number(page.dataset.alertId));

const status = document.getElementById("shortcut-status");
// Someone else holds the alert: the page offers no step, and a shortcut says whose it is (read at
// each key: a live refresh may have changed it).
const actionsBody = () => document.getElementById("alert-actions-body");
const unavailable = (step) => {
  const heldBy = actionsBody() ? actionsBody().dataset.heldBy : undefined;
  say(heldBy ? `${heldBy} holds this alert.` : `This alert cannot be ${step} now.`);
};
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

// Live: the status, assignee and actions again from desk:alert_actions (the same access function as
// the page) when a queue.changed signal lists this alert, and on every refetch signal (a reconnect, a
// seq gap, a "many changed" queue). One fetch at a time; a signal during a fetch asks for one more.
// The actions are replaced only when what they offer changed (data-state): a note being typed stays.
// Focus stays on the same control when it is still there, else on the actions; the change is
// announced politely; the panel keeps its height, so the page below it does not jump.
if (page && page.dataset.actionsUrl) {
  const alertId = Number(page.dataset.alertId);
  let fetching = false;
  let again = false;

  const refreshActions = async () => {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const response = await fetch(page.dataset.actionsUrl, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) apply(new DOMParser().parseFromString(await response.text(), "text/html"));
      // else: a session that ended answers the sign-in page (the next navigation shows it); 404: no longer visible
    } catch {
      // Offline: the live status says so; the next reconnect refetches.
    } finally {
      fetching = false;
      if (again) { again = false; refreshActions(); }
    }
  };

  const apply = (doc) => {
    for (const id of ["alert-status", "alert-assignee"]) {
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old && fresh.outerHTML !== old.outerHTML) old.replaceWith(document.adoptNode(fresh));
    }
    const fresh = doc.getElementById("alert-actions-body");
    const old = actionsBody();
    if (!fresh || !old || fresh.dataset.state === old.dataset.state) return;
    const active = document.activeElement;
    const focusId = old.contains(active) ? active.id || (active.closest("form") || {}).id || "" : null;
    const typed = new Map(Array.from(old.querySelectorAll("textarea[id]"), (area) => [area.id, area.value]));
    // No jump: where the page is one column (a phone), the evidence follows the actions, so the new
    // actions keep the old height; side by side (wide), nothing follows them and they take their own.
    const next = document.getElementById("evidence-title");
    if (next && next.getBoundingClientRect().top >= old.getBoundingClientRect().bottom) {
      fresh.style.minHeight = `${old.offsetHeight}px`;
      keepUntilOutOfView(fresh);
    }
    old.replaceWith(document.adoptNode(fresh));
    for (const [id, value] of typed) {
      const area = document.getElementById(id);
      if (area && value) area.value = value;
    }
    if (focusId !== null) {
      const same = focusId && document.getElementById(focusId);
      const target = same && fresh.contains(same) ? (same.matches("form") ? same.querySelector("button") : same) : fresh;
      target.focus({ preventScroll: true });
    }
    say(describe(fresh));
  };

  // The kept height goes once the actions are out of view (the browser's scroll anchoring keeps the
  // page still when something above the viewport shrinks) or the window is resized.
  const keepUntilOutOfView = (body) => {
    const release = () => {
      body.style.minHeight = "";
      observer.disconnect();
      window.removeEventListener("resize", release);
    };
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => !entry.isIntersecting)) release();
    });
    observer.observe(body);
    window.addEventListener("resize", release);
  };

  const describe = (body) => {
    if (body.dataset.heldBy) return `${body.dataset.heldBy} holds this alert now.`;
    const status = body.dataset.statusLabel || "";
    if (body.querySelector("form.step:not(.case-open)")) return `This alert is ${status.toLowerCase()}; you can act on it.`;
    return `This alert is ${status.toLowerCase()} now.`;
  };

  document.addEventListener("desk:queue-changed", (event) => {
    const alerts = (event.detail && event.detail.alerts) || [];
    if (alerts.some((alert) => Number(alert.id) === alertId)) refreshActions();
  });
  document.addEventListener("desk:refetch", () => refreshActions());
}
