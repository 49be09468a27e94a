/* Follows a print job live on its progress page (templates/printing/job.html).
 *
 * Without this file the page reloads itself until the PDF is ready. With it,
 * the page asks the server for the job's state every second and updates the
 * message, the progress bar and the buttons in place. Text from the server is
 * only ever inserted with textContent.
 */
(function () {
  "use strict";

  var POLL_MS = 1000, POLL_MAX_MS = 10000;

  function follow(section) {
    var url = section.getAttribute("data-print-job");
    var message = section.querySelector(".job-message");
    var bar = section.querySelector(".job-progress");
    var expected = section.querySelector(".job-expected");
    var ready = section.querySelector(".job-ready");
    var check = section.querySelector(".job-check");
    var retry = section.querySelector(".job-retry");
    var pause = POLL_MS;

    function show(state) {
      message.textContent = state.message;
      bar.value = state.percent;
      bar.textContent = state.percent + "%";
      if (state.done) {
        ready.href = state.pdf_url;
        ready.hidden = false;
        ready.focus();
      }
      if (state.done || state.failed) {
        check.hidden = true;
        if (expected) expected.hidden = true;
      }
      retry.hidden = !state.failed;
      return state.done || state.failed;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (state) {
          pause = POLL_MS;
          if (!show(state)) setTimeout(poll, pause);
        })
        .catch(function () {
          // The server is busy or the network dropped: ask again, less often.
          pause = Math.min(pause * 2, POLL_MAX_MS);
          setTimeout(poll, pause);
        });
    }

    if (!ready.hidden || !retry.hidden) return;
    setTimeout(poll, POLL_MS);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-print-job]"), follow);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
