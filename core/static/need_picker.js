/* The picker of needs (templates/backlog/_need_picker.html), as one types: the action
 * form's (several needs, checkboxes) and the merge form's (one need, radio buttons).
 *
 * Without this file, the picker's "Find needs" button sends the form back and
 * the server lists what it finds, keeping what was typed and ticked. With it,
 * the list follows the search as it is typed (the server's find.json), Enter
 * in the search box searches instead of sending the form, and a need ticked
 * in the list moves up among the chosen ones, so that the next search keeps
 * it (a radio button chosen moves up too, replacing the one chosen before
 * from a search; the suggestions stay). Titles are only ever inserted with
 * textContent.
 */
(function () {
  "use strict";

  var WAIT_MS = 250;

  function picker(box) {
    var url = box.getAttribute("data-need-picker");
    var kind = box.getAttribute("data-kind") || "checkbox";
    var name = box.getAttribute("data-field") || "needs";
    var leaveOut = (box.getAttribute("data-leave-out") || "").split(" ").filter(Boolean);
    var chosen = box.querySelector(".chosen-needs");
    var found = box.querySelector(".found-needs");
    var count = box.querySelector(".need-count");
    var text = box.querySelector("#need-q");
    var theme = box.querySelector("#need-theme");
    var session = box.querySelector("#need-session");
    var timer = null;
    var asked = 0;

    function item(need) {
      var li = document.createElement("li");
      var label = document.createElement("label");
      var input = document.createElement("input");
      var outer = document.createElement("span");
      var title = document.createElement("span");
      var small = document.createElement("small");
      label.className = "choice";
      label.htmlFor = input.id = name + "-" + need.id;
      input.type = kind;
      input.name = name;
      input.value = need.id;
      title.dir = "auto";
      title.textContent = need.title;
      small.className = "muted";
      small.textContent = need.theme;
      outer.appendChild(title);
      outer.appendChild(document.createTextNode(" "));
      outer.appendChild(small);
      label.appendChild(input);
      label.appendChild(document.createTextNode(" "));
      label.appendChild(outer);
      li.appendChild(label);
      return li;
    }

    function search() {
      var params = new URLSearchParams();
      params.set("need_q", text.value);
      params.set("need_theme", theme.value);
      params.set("need_session", session.value);
      chosen.querySelectorAll("input").forEach(function (input) {
        params.append("chosen", input.value);
      });
      leaveOut.forEach(function (id) { params.append("chosen", id); });
      var mine = ++asked;
      fetch(url + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        })
        .then(function (answer) {
          if (mine !== asked) return; // a later search is on its way
          found.textContent = "";
          answer.needs.forEach(function (need) { found.appendChild(item(need)); });
          count.textContent = answer.message;
        })
        .catch(function () { /* the Find needs button still works */ });
    }

    function soon() {
      clearTimeout(timer);
      timer = setTimeout(search, WAIT_MS);
    }

    text.addEventListener("input", soon);
    theme.addEventListener("change", search);
    session.addEventListener("change", search);
    text.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(timer);
        search();
      }
    });
    found.addEventListener("change", function (event) {
      var input = event.target;
      if (input.name === name && input.checked) {
        // A need chosen earlier from a search (not a suggestion) gives its place.
        chosen.querySelectorAll("li[data-found]").forEach(function (li) {
          if (kind === "radio") li.remove();
        });
        var li = input.closest("li");
        li.setAttribute("data-found", "");
        chosen.appendChild(li);
        input.focus();
      }
    });
  }

  document.querySelectorAll("[data-need-picker]").forEach(picker);
})();
