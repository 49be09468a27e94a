/* Drafts: what a person is typing survives a reload, a phase change or a lost connection.
 *
 * Every text box of a form marked data-live-event is saved in localStorage as
 * it is typed, under a key made of the form's address (which holds the
 * session's code), the contribution kind it sends, what it answers and the
 * field's name; an empty box gets its draft back when the page loads (the
 * live layer reloads the page when the facilitator moves to another phase).
 * A draft is dropped when its form is sent: the live layer's outbox keeps the
 * text until the server has it, and puts it back into the box if the server
 * refuses it, when it is saved again.
 */
(function () {
  "use strict";

  var PREFIX = "palabre:draft:";

  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name && (field.tagName === "TEXTAREA" || (field.tagName === "INPUT" && field.type === "text"));
    });
  }

  function key(form, field) {
    var kind = form.querySelector("input[name=kind]");
    var replyTo = form.querySelector("input[name=reply_to]");
    return PREFIX + [
      form.getAttribute("action") || location.pathname,
      kind ? kind.value : "",
      replyTo ? replyTo.value : "",
      field.name
    ].join(":");
  }

  function store(form, field) {
    try {
      if (field.value) localStorage.setItem(key(form, field), field.value);
      else localStorage.removeItem(key(form, field));
    } catch (e) { /* private mode or full: the text stays in the box */ }
  }

  function drop(form) {
    fields(form).forEach(function (field) {
      try { localStorage.removeItem(key(form, field)); } catch (e) { /* nothing kept */ }
    });
  }

  function drafted(target) {
    var form = target && target.form;
    return form && form.dataset && form.dataset.liveEvent ? form : null;
  }

  document.addEventListener("input", function (e) {
    var form = drafted(e.target);
    if (form && fields(form).indexOf(e.target) !== -1) store(form, e.target);
  });

  document.addEventListener("submit", function (e) {
    if (e.target.dataset && e.target.dataset.liveEvent) drop(e.target);
  }, true);

  // Refused by the server: the live layer put the text back in the box; keep it again.
  document.addEventListener("palabre:ack", function (e) {
    var item = e.detail.item, ack = e.detail.ack;
    if (ack && !ack.ok && item.form) fields(item.form).forEach(function (field) { store(item.form, field); });
  });

  document.querySelectorAll("form[data-live-event]").forEach(function (form) {
    fields(form).forEach(function (field) {
      if (field.value) return;
      var saved = null;
      try { saved = localStorage.getItem(key(form, field)); } catch (e) { /* none */ }
      if (saved) field.value = saved;
    });
  });
})();
