// The desk's live channel: one WebSocket to /ws/desk/ per page, as a module from 'self' (the CSP
// allows no inline script). Pushes are signals, not the data: the page refetches its visible slice
// when told to, and nothing depends on every push arriving.
//
// Events on `document`:
//   desk:refetch        detail {queue: id or null}  after every (re)connect (null: everything),
//                                                   on a seq gap, and on a "refetch" signal
//   desk:queue-changed  detail {queue, alerts, seq} the alerts that changed in one queue
//   desk:presence       detail {queue, alert, users} who has an alert open (when the server sends it)
//   desk:case-changed   detail {queue, cases, seq}  the cases that changed (queue null: a case shared one by one)
//   desk:concern        detail {id, case, kind}     a security concern raised (supervisors only hear these)
// Every [data-live-concerns] element is filled with a link to the last concern raised, and shown.
// Every [data-live-status] element shows "Connecting…" until the first connection is made, then
// "Live", "Reconnecting…" or "Offline" (and data-state "connecting", "live", "reconnecting" or
// "offline").
//
// Optional attributes on <html> or <body>: data-login-url (default "/accounts/login/").

const BACKOFF_FIRST_MS = 500;
const BACKOFF_CAP_MS = 15000;
const PING_MS = 25000;

const LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" };

let socket = null;
let lastSeq = 0;
let attempt = 0;
let retryTimer = null;
let pingTimer = null;
let stopped = false;
let openAlert = null; // the alert this page has open, told to the server for presence

function emit(name, detail) {
  document.dispatchEvent(new CustomEvent(name, { detail }));
}

function showState(state) {
  for (const element of document.querySelectorAll("[data-live-status]")) {
    element.textContent = LABELS[state];
    element.dataset.state = state;
  }
}

const CONCERN_LABELS = {
  social_engineering: "suspected social engineering",
  phishing: "suspected phishing",
  other: "a security concern",
};

function showConcern({ id, case: caseId, kind }) {
  // Ids and states only arrive here: the text is made from them, the details are behind the link.
  for (const element of document.querySelectorAll("[data-live-concerns]")) {
    const link = document.createElement("a");
    link.href = `/cases/${Number(caseId)}/`;
    link.textContent = `case #${Number(caseId)}`;
    element.replaceChildren(`Security concern #${Number(id)}: ${CONCERN_LABELS[kind] || "a security concern"} on `, link, ".");
    element.hidden = false;
  }
}

function loginUrl() {
  const holder = document.querySelector("[data-login-url]");
  const next = encodeURIComponent(window.location.pathname + window.location.search);
  return `${holder ? holder.dataset.loginUrl : "/accounts/login/"}?next=${next}`;
}

function delay() {
  // Exponential backoff with full jitter: 200 pages that lost the server at once do not all knock
  // again at the same instant when it comes back.
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  attempt += 1;
  return Math.random() * ceiling;
}

function scheduleReconnect() {
  if (stopped || retryTimer !== null) return;
  showState(navigator.onLine === false ? "offline" : "reconnecting");
  retryTimer = window.setTimeout(() => {
    retryTimer = null;
    connect();
  }, delay());
}

function onMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  const { type, seq, queue, payload } = message;
  if (typeof seq === "number") {
    // seq counts up from 1 per connection: a jump means a push was lost, so refetch everything.
    if (lastSeq && seq !== lastSeq + 1) emit("desk:refetch", { queue: null });
    lastSeq = seq;
  }
  if (type === "hello") {
    attempt = 0;
    showState("live");
    if (openAlert !== null) send({ type: "viewing", alert: openAlert }); // a new connection knows nothing
    emit("desk:refetch", { queue: null }); // whatever happened while we were away
  } else if (type === "queue.changed") {
    if (payload.refetch) emit("desk:refetch", { queue });
    else emit("desk:queue-changed", { queue, alerts: payload.alerts, seq });
  } else if (type === "access.changed") {
    emit("desk:refetch", { queue: null }); // queues came or went
  } else if (type === "case.changed") {
    if (payload.refetch) emit("desk:refetch", { queue });
    else emit("desk:case-changed", { queue, cases: payload.cases, seq });
  } else if (type === "concern.raised") {
    emit("desk:concern", payload);
    showConcern(payload);
  } else if (type === "presence") {
    emit("desk:presence", { queue, alert: payload.alert, users: payload.users });
  } else if (type === "session.ended") {
    if (payload.reason === "replaced") {
      // The session id rotated (re-authentication): the cookie still signs us in. Reconnect.
      attempt = 0;
    } else {
      stopped = true;
      showState("offline");
      window.location.assign(loginUrl());
    }
  }
}

function connect() {
  if (stopped) return;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  lastSeq = 0;
  socket = new WebSocket(`${scheme}://${window.location.host}/ws/desk/`);
  socket.addEventListener("message", onMessage);
  socket.addEventListener("open", () => {
    window.clearInterval(pingTimer);
    pingTimer = window.setInterval(() => {
      send({ type: "ping" });
      if (openAlert !== null) send({ type: "viewing", alert: openAlert }); // presence lapses unless repeated
    }, PING_MS);
  });
  socket.addEventListener("close", (event) => {
    window.clearInterval(pingTimer);
    socket = null;
    if (event.code === 4401 && lastSeq === 0) {
      // Refused at the handshake: not signed in (or not past the code step) any more.
      stopped = true;
      showState("offline");
      window.location.assign(loginUrl());
      return;
    }
    scheduleReconnect();
  });
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

/** Tell the server which alert this page has open (null: none), for presence. */
export function viewing(alertId) {
  openAlert = alertId;
  send({ type: "viewing", alert: alertId });
}

window.addEventListener("online", () => {
  if (!socket && retryTimer !== null) {
    window.clearTimeout(retryTimer);
    retryTimer = null;
    connect();
  }
});
window.addEventListener("offline", () => showState("offline"));

showState(navigator.onLine === false ? "offline" : "connecting"); // nothing was lost yet: not "reconnecting"
connect();
