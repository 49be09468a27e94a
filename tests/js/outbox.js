/* Runs core/static/live.js in Node with a fake socket, clock and storage, and
 * prints what its outbox did, for tests/test_hostile_input.py.
 *
 * Each scenario sends one write and answers it with the acknowledgements
 * given (an array [err, ack] per emission); the fake clock then fires every
 * pending timer, so a write kept for later is sent again.
 */
"use strict";

const path = require("path");

const stored = {};
globalThis.localStorage = {
  getItem: (key) => (key in stored ? stored[key] : null),
  setItem: (key, value) => { stored[key] = value; },
};
let timers = [];
globalThis.setTimeout = (fn) => { timers.push(fn); return timers.length; };
globalThis.clearTimeout = (id) => { if (id) timers[id - 1] = null; };
globalThis.setInterval = () => 0;
const banner = { textContent: "", hidden: true };
globalThis.document = {
  getElementById: () => banner,
  querySelectorAll: () => [],
  addEventListener: () => {},
  dispatchEvent: () => {},
  documentElement: { classList: { add() {}, remove() {} } },
};
globalThis.CustomEvent = class { constructor(type, options) { this.detail = options.detail; } };
globalThis.window = globalThis;
globalThis.addEventListener = () => {};

let answers = [];
let emitted = 0;
const socket = {
  connected: true,
  on() {},
  timeout() {
    return {
      emit(event, payload, callback) {
        emitted += 1;
        callback(...(answers.shift() || [new Error("timeout")]));
      },
    };
  },
};
globalThis.io = () => socket;
require(path.join(__dirname, "..", "..", "core", "static", "live.js"));

const live = window.Palabre.live({
  code: "CODE", view: "participant", seq: 0, messages: { tooLong: "Too long to send." },
});
const outboxKey = "palabre:outbox:CODE:participant";

function run(body, acks) {
  answers = acks.slice();
  emitted = 0;
  banner.textContent = "";
  live.send("contribute", { kind: "note", body: body });
  const queued = JSON.parse(stored[outboxKey] || "[]").length;
  // Fire the timers (and those they set) until nothing more is pending.
  for (let round = 0; round < 10 && timers.some(Boolean); round++) {
    const due = timers;
    timers = [];
    due.forEach((fn) => fn && fn());
  }
  const left = JSON.parse(stored[outboxKey] || "[]").length;
  return { queued, emitted, left, said: banner.textContent };
}

const scenarios = JSON.parse(process.argv[2]);
const results = {};
for (const [name, scenario] of Object.entries(scenarios)) {
  results[name] = run(scenario.body, scenario.acks);
  stored[outboxKey] = "[]";
}
console.log(JSON.stringify(results));
