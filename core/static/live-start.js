/* Starts a page's live layer (see live.js) with the settings in the data-* attributes of the
   <script> element that loads this file: the Content-Security-Policy allows no inline script.
   data-code, data-view: strings; data-seq, data-messages, data-transports: JSON. */
(function () {
  "use strict";
  var settings = document.currentScript.dataset;
  window.palabreLive = Palabre.live({
    code: settings.code,
    view: settings.view,
    seq: JSON.parse(settings.seq),
    transports: settings.transports ? JSON.parse(settings.transports) : null,
    messages: JSON.parse(settings.messages)
  });
})();
