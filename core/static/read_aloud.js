/* "Listen" buttons (components/icons.html's read_aloud): read a question or prompt out loud
 * with the phone's own speech synthesis, in the language of the text. A button's target is a
 * CSS selector: every element it matches is read in turn, each in its own language (a
 * scenario's headings in the page's, its texts in theirs), skipping those the phone has no
 * voice for. A button shows only when the phone has a voice for one of them; nothing leaves
 * the phone.
 */
(function () {
  "use strict";
  if (!("speechSynthesis" in window) || !window.SpeechSynthesisUtterance) return;

  function targets(button) {
    try {
      return Array.prototype.slice.call(document.querySelectorAll(button.dataset.readAloud));
    } catch (e) { return []; }
  }

  function languageOf(element) {
    var marked = element.closest("[lang]");
    return (marked && marked.lang) || document.documentElement.lang || "en";
  }

  // The best voice for a language: the exact tag, else the same language ("fr" for "fr-BE").
  function voiceFor(language) {
    var voices = speechSynthesis.getVoices();
    var base = language.toLowerCase().split("-")[0];
    var exact = null, near = null;
    voices.forEach(function (voice) {
      var tag = (voice.lang || "").toLowerCase().replace("_", "-");
      if (tag === language.toLowerCase()) exact = exact || voice;
      else if (tag.split("-")[0] === base) near = near || voice;
    });
    return exact || near;
  }

  // The elements of a button that the phone can read: text, and a voice for its language.
  function readable(button) {
    return targets(button).filter(function (text) {
      return text.textContent.trim() && voiceFor(languageOf(text));
    });
  }

  function showButtons() {
    document.querySelectorAll("[data-read-aloud]").forEach(function (button) {
      button.hidden = readable(button).length === 0;
    });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-read-aloud]");
    if (!button) return;
    speechSynthesis.cancel(); // a second tap starts again rather than queueing
    readable(button).forEach(function (text) {
      var utterance = new SpeechSynthesisUtterance(text.textContent.trim());
      utterance.lang = languageOf(text);
      utterance.voice = voiceFor(utterance.lang);
      utterance.rate = 0.9; // a little slower than usual: the listener may be learning
      speechSynthesis.speak(utterance);
    });
  });

  // Voices arrive late on some phones.
  speechSynthesis.addEventListener && speechSynthesis.addEventListener("voiceschanged", showButtons);
  showButtons();
})();
