/* The audit's run screen: a visit report arriving live is shown complete at once.
 *
 * live.js adds an item for each report from the event's plain fields (code,
 * date, text). The rest (service, scenario, scores, notes, time and
 * expenses, the ethics flag) is worded and translated by the server: the
 * complete items are asked for, a few reports at a time, from the same
 * template the page is rendered with, and put in place of the partial ones.
 * The assignment's row in the visits table says "Sent".
 */
(function () {
  "use strict";

  var source = document.querySelector("[data-visits-url]");
  if (!source) return;
  var BATCH_MS = 250, MAX_IDS = 100, RETRY_MS = 3000;
  var waiting = {}, timer = null;

  function ask() {
    timer = null;
    var ids = Object.keys(waiting).slice(0, MAX_IDS);
    if (!ids.length) return;
    ids.forEach(function (id) { delete waiting[id]; });
    fetch(source.dataset.visitsUrl + "?ids=" + ids.join(","), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.text();
      })
      .then(function (html) {
        var fragment = new DOMParser().parseFromString(html, "text/html");
        ["reports", "concerns"].forEach(function (name) {
          var list = document.getElementById(name);
          var items = fragment.querySelector('[data-items-for="' + name + '"]');
          if (!list || !items) return;
          Array.prototype.slice.call(items.children).forEach(function (item) {
            var shown = list.querySelector('[data-contribution-id="' + item.dataset.contributionId + '"]');
            var fresh = document.importNode(item, true);
            if (shown) {
              // Keep what live.js knows since (hidden by a moderator meanwhile).
              if (shown.classList.contains("is-hidden")) fresh.classList.add("is-hidden");
              shown.replaceWith(fresh);
            }
          });
        });
        if (Object.keys(waiting).length) later(0);
      })
      .catch(function () {
        ids.forEach(function (id) { waiting[id] = true; });
        later(RETRY_MS);
      });
  }

  function later(delay) {
    if (!timer) timer = setTimeout(ask, delay);
  }

  document.addEventListener("palabre:event", function (e) {
    var envelope = e.detail, data = envelope.data || {};
    if (data.kind !== "visit" || !(envelope.type === "contribution.added" || envelope.type === "contribution.restored")) return;
    waiting[data.id] = true;
    later(BATCH_MS);
    var status = document.querySelector('[data-report-status-for="' + (data.data || {}).assignment + '"]');
    if (status) status.textContent = source.dataset.sentLabel;
  });
})();
