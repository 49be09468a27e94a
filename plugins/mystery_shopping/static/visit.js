/* An evaluator's visit reports: each form is kept as a draft on the phone.
 *
 * What is typed is saved in localStorage as it is typed, so a report survives
 * a reload, a sleeping phone or a visit with no signal; live.js keeps a sent
 * report in its outbox until the server acknowledges it (with its client id,
 * so a resend is stored once). The draft is dropped only once the server has
 * the report; a refused one is put back into its form with the reason shown,
 * and what is wrong with each field beside it (the acknowledgement's fields).
 */
(function () {
  "use strict";

  var PREFIX = "palabre:visit-draft:";
  var messages = (document.getElementById("visit-messages") || {}).dataset || {};

  function key(form) { return PREFIX + form.dataset.visitDraft; }

  function fieldsOf(form) {
    var saved = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.name === "csrf_token" || field.name === "cid" || field.type === "hidden") return;
      if (field.type === "radio" || field.type === "checkbox") {
        if (field.checked) saved[field.name] = field.value;
        else if (field.type === "checkbox") saved[field.name] = saved[field.name] || "";
      } else {
        saved[field.name] = field.value;
      }
    });
    return saved;
  }

  function save(form) {
    try { localStorage.setItem(key(form), JSON.stringify(fieldsOf(form))); } catch (e) { /* private mode */ }
  }

  function restore(form, saved) {
    if (!saved) return;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!(field.name in saved) || field.type === "hidden") return;
      if (field.type === "radio") field.checked = field.value === saved[field.name];
      else if (field.type === "checkbox") field.checked = saved[field.name] === field.value;
      else field.value = saved[field.name];
    });
  }

  function read(form) {
    try { return JSON.parse(localStorage.getItem(key(form))); } catch (e) { return null; }
  }

  function status(form, text) {
    var el = form.querySelector("[data-visit-status]");
    if (el) el.textContent = text || "";
  }

  // Each field's problem, beside it: `wrong` maps field names to messages ({} clears them all).
  function showProblems(form, wrong) {
    form.querySelectorAll("[data-problem-for]").forEach(function (el) {
      var name = el.dataset.problemFor, message = wrong[name] || "";
      el.textContent = message;
      el.hidden = !message;
      var box = el.closest(".field, fieldset");
      if (box) box.classList.toggle("has-error", !!message);
      Array.prototype.forEach.call(form.elements, function (field) {
        if (field.name !== name || field.type === "radio") return;
        if (message) field.setAttribute("aria-invalid", "true");
        else field.removeAttribute("aria-invalid");
      });
    });
  }

  var forms = document.querySelectorAll("form[data-visit-draft]");
  Array.prototype.forEach.call(forms, function (form) {
    restore(form, read(form));
    form.addEventListener("input", function () { save(form); });
    form.addEventListener("change", function () { save(form); });
    form.addEventListener("submit", function () {
      save(form);
      showProblems(form, {});
      status(form, window.palabreLive && window.palabreLive.socket.connected ? messages.sending : messages.queued);
    });
  });

  function formFor(assignment) {
    return Array.prototype.find.call(forms, function (form) {
      return form.elements.assignment && form.elements.assignment.value === assignment;
    });
  }

  document.addEventListener("palabre:ack", function (e) {
    var payload = e.detail.item.payload, ack = e.detail.ack;
    if (payload.kind !== "visit") return;
    var form = formFor(payload.assignment);
    if (!form) return;
    if (ack && ack.ok) {
      try { localStorage.removeItem(key(form)); } catch (err) { /* private mode */ }
      status(form, messages.sent);
      form.querySelectorAll("input, textarea, button").forEach(function (el) { el.disabled = true; });
      // The visit's heading says it is sent, as after a reload.
      var summary = form.closest("details") && form.closest("details").querySelector("summary[data-sent-summary]");
      if (summary) summary.textContent = summary.dataset.sentSummary;
      // And the next visit still to report opens, as it would after a reload.
      var next = Array.prototype.find.call(forms, function (other) {
        return !other.elements.body.disabled && other.closest("details");
      });
      if (next) next.closest("details").open = true;
    } else {
      restore(form, read(form));
      status(form, ack && ack.error);
      showProblems(form, (ack && ack.fields) || {});
    }
  });
})();
