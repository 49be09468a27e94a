/* Live charts: a figure marked data-live-chart is redrawn when the room writes or votes.
 *
 * Charts are rendered by the server (SVG with its title, description and data
 * table), so the screen and the printed report match. After contributions or
 * votes arrive, this asks for the page again (at most once every two seconds)
 * and swaps each live figure for the same figure of the fresh page. The fresh
 * figure comes from this page's own address, rendered and escaped by the
 * server like the page itself.
 */
(function () {
  "use strict";

  var REFRESH_MS = 2000;
  var EVENTS = ["contribution.added", "contribution.changed", "contribution.hidden",
    "contribution.restored", "votes.changed", "participants.changed"];
  var timer = null;

  function refresh() {
    timer = null;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-chart]").forEach(function (chart) {
          var replacement = fresh.getElementById(chart.id);
          if (replacement) chart.replaceWith(document.importNode(replacement, true));
        });
      })
      .catch(function () { /* offline: the next event tries again */ });
  }

  document.addEventListener("palabre:event", function (e) {
    if (EVENTS.indexOf(e.detail.type) === -1 || !document.querySelector("[data-live-chart]")) return;
    if (!timer) timer = setTimeout(refresh, REFRESH_MS);
  });
})();
