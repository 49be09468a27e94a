/* Forum theatre, new session: add, remove and move scene cards in the page.
 *
 * The cards' buttons post the form (ForumTheatreConfig.rearrange), which works before this
 * file arrives; with it, the same buttons change the page without a reload. Field names
 * carry the card's position ("config-scenes-2-versions-0-title"): after every change the
 * cards are numbered again, so the server reads them in the order they are shown.
 */
(function () {
  "use strict";

  function renumber(list) {
    var base = list.id;
    var pattern = new RegExp("^" + base.replace(/[-]/g, "\\-") + "-\\d+");
    var cards = list.querySelectorAll("[data-scene]");
    var max = parseInt(list.getAttribute("data-max"), 10) || 12;
    // The legend's words come from the server, written for scene 999 (see the template).
    var label = list.getAttribute("data-scene-label");
    Array.prototype.forEach.call(cards, function (card, index) {
      var prefix = base + "-" + index;
      var rename = function (value) { return value.replace(pattern, prefix); };
      [card].concat(Array.prototype.slice.call(card.querySelectorAll("[id], [name], [for], [aria-describedby]"))).forEach(function (el) {
        ["id", "name", "for"].forEach(function (attr) {
          if (el.hasAttribute(attr)) el.setAttribute(attr, rename(el.getAttribute(attr)));
        });
        if (el.hasAttribute("aria-describedby")) {
          el.setAttribute("aria-describedby", el.getAttribute("aria-describedby").split(" ").map(rename).join(" "));
        }
      });
      var number = card.querySelector(".scene-number");
      if (number && label) number.textContent = label.replace("999", String(index + 1));
      card.querySelectorAll("[data-scene-change]").forEach(function (button) {
        var verb = button.getAttribute("data-scene-change");
        button.value = verb + ":" + index;
        button.disabled = (verb === "up" && index === 0) ||
          (verb === "down" && index === cards.length - 1) ||
          (verb === "remove" && cards.length === 1);
      });
    });
    var add = list.querySelector("[data-scene-change=add]");
    if (add) add.disabled = cards.length >= max;
  }

  function blank(card) {
    card.querySelectorAll("input[type=text], input:not([type]), textarea").forEach(function (box) { box.value = ""; });
    card.querySelectorAll(".field-error").forEach(function (error) { error.remove(); });
    card.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    card.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    card.querySelectorAll("details").forEach(function (details) { details.open = false; });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-scene-change]");
    var list = button && button.closest("[data-scene-list]");
    if (!list) return;
    event.preventDefault();
    var verb = button.getAttribute("data-scene-change");
    var cards = list.querySelector(".scene-cards");
    var card = button.closest("[data-scene]");
    var focus = button;
    if (verb === "add") {
      var last = cards.lastElementChild;
      var copy = last.cloneNode(true);
      blank(copy);
      cards.appendChild(copy);
      focus = copy.querySelector("input[type=text], input:not([type])");
    } else if (verb === "remove") {
      focus = (card.nextElementSibling || card.previousElementSibling).querySelector(".scene-number");
      card.remove();
    } else if (verb === "up" && card.previousElementSibling) {
      cards.insertBefore(card, card.previousElementSibling);
    } else if (verb === "down" && card.nextElementSibling) {
      cards.insertBefore(card.nextElementSibling, card);
    }
    renumber(list);
    if (focus) {
      if (focus.disabled) focus = card.querySelector("[data-scene-change]:not([disabled])") || focus;
      if (!focus.hasAttribute("tabindex") && focus.classList.contains("scene-number")) focus.setAttribute("tabindex", "-1");
      focus.focus();
    }
  });
})();
