/* The citizen dialogue's phones, on top of live.js.
 *
 * - An interview being typed (form[data-draft-key]) is kept in localStorage at
 *   every keystroke and put back when the page opens again, so a phone that
 *   sleeps, reloads or loses its connection keeps it.
 * - Once sent, live.js keeps the interview in its outbox (with its client id)
 *   until the server has stored it; here the form is emptied for the next
 *   interview and a line says it is waiting, then sent. If the server refuses
 *   it for good (a withdrawn link, a missing answer), the answers come back
 *   into the form, so nothing typed is lost.
 * - A form marked data-reload-on-ack reloads the page once the server has it.
 */
(function () {
  "use strict";

  function read(key) {
    try { return JSON.parse(localStorage.getItem(key)) || null; } catch (e) { return null; }
  }
  function write(key, value) {
    try {
      if (value) localStorage.setItem(key, JSON.stringify(value));
      else localStorage.removeItem(key);
    } catch (e) { /* private mode: the outbox still holds what was sent */ }
  }
  function fieldsOf(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.type === "hidden" || field.type === "submit") return;
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked) values[field.name] = field.value;
      } else if (field.value) {
        values[field.name] = field.value;
      }
    });
    return values;
  }
  function fill(form, values) {
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.type === "hidden" || field.type === "submit" || !(field.name in values)) return;
      if (field.type === "checkbox" || field.type === "radio") field.checked = field.value === values[field.name];
      else field.value = values[field.name];
    });
  }
  function clear(form) {
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.type === "hidden" || field.type === "submit") return;
      if (field.type === "checkbox" || field.type === "radio") field.checked = false;
      else if (field.tagName === "SELECT" && field.name !== "language" && field.name !== "place") field.value = "";
      else if (field.tagName !== "SELECT") field.value = "";
    });
  }
  var messages = document.getElementById("dialogue-messages");
  function say(name) { return (messages && messages.dataset[name]) || ""; }

  document.querySelectorAll("form[data-draft-key]").forEach(function (form) {
    var key = form.dataset.draftKey;
    var draft = read(key);
    if (draft) fill(form, draft);
    form.addEventListener("input", function () { write(key, fieldsOf(form)); });
    form.addEventListener("change", function () { write(key, fieldsOf(form)); });
  });

  // Before live.js sends the form (capture runs first), note its client id:
  // live.js puts a new one in the field only when it has queued the write.
  var cidBefore = null;
  document.addEventListener("submit", function (e) {
    var cid = e.target.querySelector && e.target.querySelector("input[name=cid]");
    cidBefore = cid ? cid.value : null;
  }, true);
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !form.dataset.draftKey || !form.dataset.liveEvent) return;
    var cid = form.querySelector("input[name=cid]");
    if (!cid || cid.value === cidBefore) return; // not queued: the text stays
    var outbox = form.querySelector("[data-outbox]");
    if (outbox) {
      var line = document.createElement("li");
      line.className = "pending";
      // Not data-pending: live.js removes those as soon as the answer comes.
      line.dataset.interview = cidBefore;
      line.textContent = say("waiting");
      outbox.appendChild(line);
    }
    clear(form);
    write(form.dataset.draftKey, null);
  });

  document.addEventListener("palabre:ack", function (e) {
    var item = e.detail.item, ack = e.detail.ack || {};
    var form = item.form;
    if (item.payload.kind === "interview") {
      document.querySelectorAll('[data-outbox] [data-interview="' + item.payload.cid + '"]').forEach(function (line) {
        if (ack.ok) { line.className = "sent"; line.textContent = say("sent"); }
        else if (!ack.retry) line.remove();
      });
      var target = form || document.querySelector("form[data-draft-key]");
      if (!ack.ok && !ack.retry && target) {
        fill(target, item.payload);
        write(target.dataset.draftKey, fieldsOf(target));
      }
    }
    if (ack.ok && form && form.dataset.reloadOnAck !== undefined) location.reload();
  });
})();
