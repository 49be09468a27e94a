/* Participant page: show the dots left that the server's acknowledgement of a vote reports. */
document.addEventListener("palabre:ack", function (e) {
  var ack = e.detail.ack;
  if (ack && ack.ok && typeof ack.left === "number") {
    document.querySelectorAll("[data-dots-left]").forEach(function (el) { el.textContent = ack.left; });
  }
});
