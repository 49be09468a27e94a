/* Runs core/static/live.js in Node with a fake socket and clock, and prints
 * the order in which it applied the events it was sent, for
 * tests/test_event_order.py.
 *
 * Each scenario delivers envelopes (`arrive`, in that order) to a page
 * rendered at `seq`; the fake clock then fires the pending timers, and a
 * `replay` request is answered with the scenario's `replay` reply.
 */
"use strict";

const path = require("path");

globalThis.localStorage = { getItem: () => null, setItem: () => {} };
let timers = [];
globalThis.setTimeout = (fn) => { timers.push(fn); return timers.length; };
globalThis.clearTimeout = (id) => { if (id) timers[id - 1] = null; };
globalThis.setInterval = () => 0;
let applied = [];
globalThis.document = {
  getElementById: () => null,
  querySelectorAll: () => [],
  addEventListener: () => {},
  dispatchEvent: (event) => applied.push(event.detail.seq === undefined ? event.detail.type : event.detail.seq),
  documentElement: { classList: { add() {}, remove() {} } },
};
globalThis.CustomEvent = class { constructor(type, options) { this.detail = options.detail; } };
globalThis.window = globalThis;
globalThis.addEventListener = () => {};
globalThis.location = { reload() { applied.push("reload"); } };

let handlers = {};
let replayReply = null;
let replays = [];
const socket = {
  connected: true,
  on(name, fn) { handlers[name] = fn; },
  timeout() {
    return {
      emit(event, payload, callback) {
        if (event !== "replay") return;
        replays.push(payload.after);
        callback(null, replayReply);
      },
    };
  },
};
globalThis.io = () => socket;
require(path.join(__dirname, "..", "..", "core", "static", "live.js"));

function run(scenario) {
  handlers = {};
  timers = [];
  applied = [];
  replays = [];
  replayReply = scenario.replay || null;
  const live = window.Palabre.live({ code: "CODE", view: "participant", seq: scenario.seq || 0 });
  scenario.arrive.forEach((envelope) => handlers.event(envelope));
  for (let round = 0; round < 5 && timers.some(Boolean); round++) {
    const due = timers;
    timers = [];
    due.forEach((fn) => fn && fn());
  }
  return { applied, replays, lastSeq: live.lastSeq() };
}

const scenarios = JSON.parse(process.argv[2]);
const results = {};
for (const [name, scenario] of Object.entries(scenarios)) results[name] = run(scenario);
console.log(JSON.stringify(results));
