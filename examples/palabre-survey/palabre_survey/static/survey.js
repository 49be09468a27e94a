/* The survey's live bars and chosen buttons, on top of Palabre's live.js.
 *
 * live.js keeps averages and counts current by itself (data-average-for,
 * data-count-for); bars are the survey's own. Every broadcast reaches the page
 * as a `palabre:event` DOM event: a `votes.changed` for a rating kind carries
 * the `distribution` (people per value of the scale), from which the bars of
 * that statement are redrawn: inside its [data-distribution-for] element,
 * [data-share="<v>"] is as wide as the share of answers that gave v and
 * [data-n="<v>"] shows how many did (see templates/survey/_bars.html). A `palabre:ack` with a `rating` marks the button
 * the phone pressed as chosen. Without this file the page still shows the
 * bars as they were when it was loaded.
 */
(function () {
  "use strict";

  document.addEventListener("palabre:event", function (e) {
    var envelope = e.detail;
    if (envelope.type !== "votes.changed" || !envelope.data.distribution) return;
    var data = envelope.data;
    document.querySelectorAll('[data-distribution-for="' + data.id + '"]').forEach(function (chart) {
      var count = data.count || 0;
      chart.querySelectorAll("[data-share]").forEach(function (el) {
        var n = data.distribution[el.dataset.share] || 0;
        el.style.width = (count ? (100 * n) / count : 0).toFixed(1) + "%";
      });
      chart.querySelectorAll("[data-n]").forEach(function (el) {
        var n = data.distribution[el.dataset.n] || 0;
        // A stacked bar's empty part shows nothing; a table's row shows 0.
        el.textContent = n ? n : el.classList.contains("survey-seg") ? "" : "0";
      });
      chart.querySelectorAll("[data-count]").forEach(function (el) { el.textContent = count; });
      chart.querySelectorAll("[data-mean]").forEach(function (el) {
        el.textContent = data.average == null ? "–" : Number(data.average).toFixed(1);
      });
      var threshold = Number(chart.dataset.threshold);
      chart.classList.toggle("survey-low", data.average != null && data.average < threshold);
    });
  });

  document.addEventListener("palabre:ack", function (e) {
    var item = e.detail.item, ack = e.detail.ack;
    if (!ack || !ack.ok || typeof ack.rating !== "number") return;
    var selector = '.survey-rating input[name=contribution][value="' + item.payload.contribution + '"]';
    document.querySelectorAll(selector).forEach(function (input) {
      input.form.querySelectorAll("button.survey-value").forEach(function (button) {
        var chosen = button.value === String(ack.rating);
        button.classList.toggle("chosen", chosen);
        button.setAttribute("aria-pressed", chosen ? "true" : "false");
      });
    });
  });
})();
