// Runs static/js/desk_live.js against a fake browser (window, document, WebSocket) and prints what
// it did as JSON, for desk/tests/test_desk_live_js.py. Usage: node desk_live_harness.mjs MODULE.mjs
const events = [];
const sockets = [];
const timers = [];
const assigned = [];
const status = { textContent: "", dataset: {} };
const concerns = { hidden: true, children: [], replaceChildren(...nodes) { this.children = nodes; } };

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.listeners = {};
    this.readyState = 0;
    sockets.push(this);
  }
  addEventListener(type, listener) {
    (this.listeners[type] ||= []).push(listener);
  }
  send() {}
  fire(type, event) {
    for (const listener of this.listeners[type] || []) listener(event);
  }
  message(data) {
    this.fire("message", { data: JSON.stringify(data) });
  }
}
FakeSocket.OPEN = 1;

globalThis.window = {
  location: { protocol: "https:", host: "desk.example", pathname: "/desk/", search: "", assign: (u) => assigned.push(u) },
  setTimeout: (f, ms) => timers.push({ f, ms }),
  clearTimeout: () => {},
  setInterval: () => 1,
  clearInterval: () => {},
  addEventListener: () => {},
};
globalThis.document = {
  dispatchEvent: (e) => events.push([e.type, e.detail]),
  querySelectorAll: (selector) => (selector === "[data-live-concerns]" ? [concerns] : [status]),
  querySelector: () => null,
  createElement: (tag) => ({ tag, href: "", textContent: "" }),
};
globalThis.WebSocket = FakeSocket;
Object.defineProperty(globalThis, "navigator", { value: { onLine: true }, configurable: true });

const out = {};
const last = () => sockets[sockets.length - 1];
const take = () => events.splice(0);
const fireTimer = () => timers.shift().f();

await import(process.argv[2]);
out.url = sockets[0].url;
out.initial = status.dataset.state;
out.initial_text = status.textContent;

last().message({ type: "hello", seq: 1, queue: null, payload: { queues: [5] } });
out.hello = { events: take(), state: status.dataset.state, text: status.textContent };
const alerts = [{ id: 9, status: "open", severity: 3, assignee: null }];
last().message({ type: "queue.changed", seq: 2, queue: 5, payload: { alerts, refetch: false } });
out.changed = take();
last().message({ type: "queue.changed", seq: 4, queue: 5, payload: { alerts, refetch: false } });
out.gap = take();
last().message({ type: "queue.changed", seq: 5, queue: 5, payload: { alerts: [], refetch: true } });
out.refetch = take();
const cases = [{ id: 3, status: "waiting_on_customer", assignee: "amy" }];
last().message({ type: "case.changed", seq: 6, queue: 5, payload: { cases, refetch: false } });
last().message({ type: "case.changed", seq: 7, queue: null, payload: { cases: [], refetch: true } });
out.case_changed = take();
last().message({ type: "concern.raised", seq: 8, queue: null, payload: { id: 4, case: 3, kind: "phishing" } });
out.concern = {
  events: take(),
  hidden: concerns.hidden,
  text: concerns.children.map((n) => (typeof n === "string" ? n : `[${n.textContent}](${n.href})`)).join(""),
};

// Dropped: it reconnects by itself, waiting longer each time, never past the cap.
out.delays = [];
last().fire("close", { code: 1006 });
out.dropped_state = status.dataset.state;
for (let i = 0; i < 10; i++) {
  out.delays.push(timers[0].ms);
  fireTimer();
  last().fire("close", { code: 1006 });
}
fireTimer();
out.sockets_after_drops = sockets.length;
last().message({ type: "hello", seq: 1, queue: null, payload: { queues: [5] } });
out.reconnected = { events: take(), state: status.dataset.state };
out.delay_after_hello = (last().fire("close", { code: 1006 }), timers[0].ms);
fireTimer();

// A rotated session: reconnect with the cookie; a refused handshake then means signed out.
last().message({ type: "hello", seq: 1, queue: null, payload: { queues: [5] } });
last().message({ type: "session.ended", seq: 2, queue: null, payload: { reason: "replaced" } });
last().fire("close", { code: 4401 });
out.replaced = { assigned: assigned.length, timers: timers.length };
fireTimer();
last().fire("close", { code: 4401 });
out.refused = { assigned: assigned.slice(), state: status.dataset.state, timers: timers.length };

// Presence, on a fresh copy of the module: the open alert is told once the connection is up (and
// again on every new one); others' presence becomes an event.
const again = await import(`${process.argv[2]}?presence`);
const fresh = last();
const sent = [];
fresh.send = (data) => sent.push(JSON.parse(data));
again.viewing(42); // not open yet: nothing sent
fresh.readyState = 1;
take();
fresh.message({ type: "hello", seq: 1, queue: null, payload: { queues: [5] } });
fresh.message({ type: "presence", seq: 2, queue: 5, payload: { alert: 42, users: ["amy"] } });
out.presence = { sent, events: take() };
console.log(JSON.stringify(out));
