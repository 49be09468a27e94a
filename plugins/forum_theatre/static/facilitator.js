/* Forum theatre, facilitator's screen: empty a form once the server has done its action. */
document.addEventListener("palabre:ack", function (e) {
  var item = e.detail.item, ack = e.detail.ack;
  if (ack && ack.ok && item.event === "method.action" && item.form) item.form.reset();
});
