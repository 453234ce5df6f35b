// The queue page's keyboard and live refresh. Loaded as a module from 'self' (the CSP allows no
// inline script); the page works without it (links, forms, the "Older" link).
//
// Keys: j/k move the selected row, Enter opens it, c claims it, n takes the next alert, / goes to
// the customer search, ? shows the help. None while typing in a field or with a modifier held.
// Live: desk_live.js dispatches `desk:queue-changed` (detail: {queue, alerts, seq}), `desk:refetch`
// (detail: {queue or null}) and `desk:case-changed` (detail: {queue, cases}) on document; each
// refetches this page's rows (which show their alert's open case) with the current filters and
// cursor, keeps the selected row (by alert id) and the focus, and announces new alerts politely.

const page = document.querySelector("[data-queue-page]");
if (page) {
  const queueId = page.dataset.queueId;
  const rowsUrl = page.dataset.rowsUrl;
  const dialog = document.getElementById("shortcuts");
  const announce = document.getElementById("queue-announce");
  const status = document.getElementById("shortcut-status");
  let selectedId = null;

  const tbody = () => document.getElementById("queue-rows");
  const rows = () => Array.from(tbody().querySelectorAll("tr[data-alert-id]"));

  function say(region, message) {
    region.textContent = ""; // cleared first so the same message twice is announced twice
    window.setTimeout(() => { region.textContent = message; }, 50);
  }

  function select(row, { focus = true } = {}) {
    for (const other of rows()) {
      other.setAttribute("tabindex", "-1");
      other.removeAttribute("aria-selected");
    }
    if (!row) { selectedId = null; return; }
    row.setAttribute("tabindex", "0"); // roving tabindex: Tab reaches the selected row only
    row.setAttribute("aria-selected", "true");
    selectedId = row.dataset.alertId;
    if (focus) {
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function selected() {
    return rows().find((row) => row.dataset.alertId === selectedId) || null;
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(selected());
    const next = index < 0 ? all[0] : all[Math.min(all.length - 1, Math.max(0, index + step))];
    select(next);
  }

  function typing(target) {
    return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
  }

  const keys = {
    j: () => move(1),
    k: () => move(-1),
    Enter: () => {
      const row = selected();
      const link = row && row.querySelector("a.row-link");
      if (link) window.location.assign(link.href);
    },
    c: () => {
      const row = selected();
      if (!row) return say(status, "Select an alert first (j / k).");
      const form = row.querySelector("form.claim-form");
      if (!form) return say(status, "This alert is already held.");
      form.requestSubmit();
    },
    n: () => {
      const form = document.getElementById("next-form");
      if (!form) return say(status, "Your role may not take alerts here.");
      form.requestSubmit();
    },
    "/": () => {
      const search = document.getElementById("id_customer");
      search.focus();
      search.select();
    },
    "?": () => { if (!dialog.open) dialog.showModal(); },
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) || dialog.open) return;
    // Enter on a link or button does what it does; on a row (or nowhere), it opens the selected row.
    if (event.key === "Enter" && event.target.closest && event.target.closest("a, button")) return;
    const run = keys[event.key];
    if (!run) return;
    event.preventDefault();
    run();
  });

  document.getElementById("help-open").addEventListener("click", () => dialog.showModal());

  // A click on a row (not on its link or button) selects it.
  page.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-alert-id]");
    if (row && !event.target.closest("a, button, input")) select(row);
  });
  page.addEventListener("focusin", (event) => {
    const row = event.target.closest && event.target.closest("tr[data-alert-id]");
    if (row && row.dataset.alertId !== selectedId) select(row, { focus: false });
  });

  // Live refresh: one fetch at a time; a signal during a fetch asks for one more afterwards.
  let fetching = false;
  let again = false;

  async function refetch() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const response = await fetch(rowsUrl + window.location.search, {
        headers: { Accept: "text/html" }, credentials: "same-origin",
      });
      if (!response.ok) return; // a session that ended answers the sign-in page: the next navigation shows it
      replace(new DOMParser().parseFromString(await response.text(), "text/html"));
    } catch (error) {
      // Offline: the live status says so; the next signal or reconnect refetches.
    } finally {
      fetching = false;
      if (again) { again = false; refetch(); }
    }
  }

  function replace(doc) {
    const fresh = doc.getElementById("queue-rows");
    if (!fresh) return;
    const old = tbody();
    const before = new Set(rows().map((row) => row.dataset.alertId));
    const active = document.activeElement;
    const focusRow = old.contains(active) ? active.closest("tr[data-alert-id]") : null;
    const focusId = focusRow ? focusRow.dataset.alertId : null;
    const focusWasRow = focusRow === active;
    const focusIndex = focusRow ? rows().indexOf(focusRow) : -1;

    old.replaceWith(document.adoptNode(fresh));
    const older = document.getElementById("older-link");
    if (older) {
      older.href = fresh.dataset.olderUrl || "";
      older.hidden = !fresh.dataset.olderUrl;
    }
    for (const item of doc.querySelectorAll("[data-queue-counts] li")) updateCounts(item);
    showPresence();

    const now = rows();
    const added = now.filter((row) => !before.has(row.dataset.alertId)).length;
    if (added) say(announce, added === 1 ? "1 new alert" : `${added} new alerts`);

    const keep = now.find((row) => row.dataset.alertId === selectedId) || null;
    if (focusId !== null) {
      // Focus was in the rows: back on the same alert, or on the row now where it was.
      const target = now.find((row) => row.dataset.alertId === focusId)
        || now[Math.min(focusIndex, now.length - 1)] || null;
      if (target) {
        select(target, { focus: false });
        const inner = !focusWasRow && target.querySelector("a.row-link");
        (inner || target).focus({ preventScroll: true });
      } else {
        document.querySelector(".table-scroll").focus({ preventScroll: true }); // no row left: never lose focus to <body>
      }
    } else {
      select(keep, { focus: false });
    }
  }

  function updateCounts(item) {
    const link = document.querySelector(`[data-queue-link="${item.dataset.queueId}"]`);
    if (!link) return;
    for (const name of ["active", "unassigned", "breaching"]) {
      const span = link.querySelector(`[data-count="${name}"]`);
      if (!span) continue;
      const value = Number(item.dataset[name]);
      span.textContent = `${value} ${name}`;
      if (name === "breaching") span.hidden = value === 0;
    }
  }

  function forThisQueue(event) {
    const queue = event.detail ? event.detail.queue : null;
    return queue === null || queue === undefined || String(queue) === queueId;
  }

  // Presence: who else has each alert open. Kept by alert id, so a refetched row shows it again.
  const viewers = new Map();
  function showPresence() {
    for (const row of rows()) {
      const cell = row.querySelector("[data-viewing]");
      if (!cell) continue;
      const users = viewers.get(row.dataset.alertId) || [];
      cell.textContent = users.join(", ");
      cell.title = users.length ? `Open now by ${users.join(", ")}` : "";
    }
  }
  document.addEventListener("desk:presence", (event) => {
    if (!forThisQueue(event)) return;
    viewers.set(String(event.detail.alert), event.detail.users || []);
    showPresence();
  });
  document.addEventListener("desk:queue-changed", (event) => { if (forThisQueue(event)) refetch(); });
  // A case opened or changed in this queue (say, by a customer's "No, it wasn't me"): rows show their case.
  document.addEventListener("desk:case-changed", (event) => { if (event.detail.queue != null && forThisQueue(event)) refetch(); });
  document.addEventListener("desk:refetch", (event) => { if (forThisQueue(event)) refetch(); });

  // Start with the first row selected (not focused: the page's focus stays where the browser put it).
  select(rows()[0] || null, { focus: false });
}
