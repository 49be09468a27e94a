/* Dots on a participant's page, kept current after each acknowledged vote.
 *
 * The server answers a dot given or taken back with {ok, left, mine,
 * contribution}: every [data-dots-left] shows the dots left, "Give a dot"
 * buttons are disabled at 0 and enabled again when a dot is taken back, and
 * the contribution's "from you" count and "Take back a dot" button follow
 * `mine`. New contributions arriving live get the same state. Without this
 * file each vote is a plain form post and the page shows the same after
 * reloading.
 */
(function () {
  "use strict";

  var left = null;

  function applyLeft() {
    if (left === null) return;
    document.querySelectorAll("[data-dots-left]").forEach(function (el) { el.textContent = left; });
    document.querySelectorAll(".vote-form [data-give]").forEach(function (button) { button.disabled = left <= 0; });
  }

  function applyMine(contribution, mine) {
    document.querySelectorAll('.vote-form[data-dots-for="' + contribution + '"]').forEach(function (form) {
      form.querySelectorAll("[data-mine-count]").forEach(function (el) { el.textContent = mine; });
      form.querySelectorAll("[data-mine]").forEach(function (el) { el.hidden = mine <= 0; });
      form.querySelectorAll("[data-take-back]").forEach(function (el) { el.hidden = mine <= 0; });
    });
  }

  document.addEventListener("palabre:ack", function (e) {
    var ack = e.detail.ack;
    if (!ack || !ack.ok || typeof ack.left !== "number") return;
    left = ack.left;
    applyLeft();
    if (ack.contribution !== undefined && typeof ack.mine === "number") applyMine(ack.contribution, ack.mine);
  });

  document.addEventListener("palabre:event", function (e) {
    if (e.detail.type !== "contribution.added") return;
    // A form cloned from the live <template> carries its id in the hidden field only.
    document.querySelectorAll('.vote-form[data-dots-for=""]').forEach(function (form) {
      var id = form.querySelector("input[name=contribution]");
      if (id && id.value) form.dataset.dotsFor = id.value;
    });
    applyLeft();
  });

  var shown = document.querySelector("[data-dots-left]");
  if (shown && shown.textContent.trim() !== "") left = Number(shown.textContent);
})();
