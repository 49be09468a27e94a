/* Forum theatre, participant's page: show a tap, a queue number or a rating as the server has it. */
document.addEventListener("palabre:ack", function (e) {
  var item = e.detail.item, ack = e.detail.ack;
  if (!ack || !ack.ok) return;
  var kind = item.payload.kind;
  // A tap or a queue number changes this page: show it as the server has it.
  if (kind === "happened" || kind === "stop") location.reload();
  if (typeof ack.rating === "number") {
    document.querySelectorAll('.rating-form input[name=contribution][value="' + item.payload.contribution + '"]').forEach(function (input) {
      input.form.querySelectorAll("button.rating").forEach(function (b) { b.classList.toggle("chosen", b.value === String(ack.rating)); });
    });
  }
});
// The joker called this phone's number: show "your turn".
document.addEventListener("palabre:event", function (e) {
  var mine = document.querySelector("[data-my-stop]");
  if (mine && e.detail.type === "contribution.changed" && String(e.detail.data.id) === mine.dataset.myStop) location.reload();
});
