/* Texts in each language (components/texts_field.html): when a language is ticked or
 * unticked in the session's form, its inputs come out of "Other languages" or go back in,
 * so the facilitator writes in the languages the session offers. Without this file the
 * inputs stay where the page put them, and "Other languages" opens by hand.
 */
(function () {
  "use strict";

  function arrange(form) {
    var ticked = Array.prototype.map.call(
      form.querySelectorAll("input[name=languages]:checked"), function (box) { return box.value; });
    if (!ticked.length) return;
    form.querySelectorAll("[data-texts-field]").forEach(function (field) {
      var offered = field.querySelector("[data-texts-offered]");
      var others = field.querySelector("[data-texts-others]");
      if (!offered || !others) return;
      var versions = field.querySelectorAll("[data-text-language]");
      // The ticked languages in the order of the boxes, then the others in theirs.
      ticked.forEach(function (code) {
        var version = field.querySelector("[data-text-language='" + code + "']");
        if (version) offered.appendChild(version);
      });
      Array.prototype.forEach.call(versions, function (version) {
        if (ticked.indexOf(version.getAttribute("data-text-language")) < 0) others.appendChild(version);
      });
      others.hidden = !others.querySelector("[data-text-language]");
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("input[name=languages]") && event.target.form) {
      arrange(event.target.form);
    }
  });
})();
