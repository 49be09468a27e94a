/* Palabre's live layer in the browser.
 *
 * Pages work without this file: forms post and the page reloads. With it:
 * - forms marked data-live-event are sent over Socket.IO instead, each with a
 *   client-generated id (cid), and kept in localStorage until the server
 *   acknowledges them after its commit; unacknowledged ones are resent after a
 *   reconnect or a reload, so a phone that sleeps loses nothing;
 * - broadcast events ({seq, type, data}) update the page; on reconnect the
 *   server replays what was missed since the last sequence number seen;
 * - timers count down, silently, saying the time left at a few thresholds;
 * - the focus stays where it was across a reload (a new phase, a staff form's post);
 * - what is sent is confirmed in the page's polite status line (#live-status).
 * Text from the server is only ever inserted with textContent, never as HTML.
 *
 * A write the server refuses ({ok: false}) leaves the outbox for good; one it
 * could not do for now ({ok: false, retry: true}) or that got no answer stays
 * and is sent again after a pause that grows, and on every reconnection.
 */
(function () {
  "use strict";

  // The server's limit on one message (MAX_MESSAGE_BYTES in core/live.py): a
  // bigger one closes the connection, so it is refused here instead of queued.
  var MAX_MESSAGE_BYTES = 65536;
  // Room for the event's name and Socket.IO's framing around the payload.
  var ENVELOPE_BYTES = 512;
  var RETRY_FIRST_MS = 2000, RETRY_MAX_MS = 30000;
  // How long an event that arrived before its predecessor waits for it.
  var GAP_WAIT_MS = 1000;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  function readJSON(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) || fallback; } catch (e) { return fallback; }
  }

  function writeJSON(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode: keep in memory */ }
  }

  function formPayload(form) {
    var payload = {};
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrf_token" && name !== "submit") payload[name] = value;
    });
    // A field's maxlength holds for pasted and scripted text too.
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.maxLength > 0 && typeof payload[field.name] === "string") {
        payload[field.name] = cut(payload[field.name], field.maxLength);
      }
    });
    return payload;
  }

  // At most `length` UTF-16 units, never ending on half of a surrogate pair.
  function cut(text, length) {
    if (text.length <= length) return text;
    var end = length;
    var last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    return text.slice(0, end);
  }

  function messageBytes(payload) {
    var json = JSON.stringify(payload);
    return window.TextEncoder ? new TextEncoder().encode(json).length : json.length * 3;
  }

  function fits(item) {
    return messageBytes(item.payload) + ENVELOPE_BYTES <= MAX_MESSAGE_BYTES;
  }

  // data-kind, data-group, data-phase-index, data-reply-to filter on the
  // contribution itself; data-where-<field> on its structured data
  // (data-where-state="waiting").
  function matches(container, data) {
    var checks = ["kind", "group", "phaseIndex", "replyTo"];
    var fields = { kind: data.kind, group: data.group, phaseIndex: data.phase_index, replyTo: data.reply_to };
    var extra = data.data || {};
    Object.keys(container.dataset).forEach(function (name) {
      if (name.indexOf("where") === 0 && name.length > 5) {
        var field = name.charAt(5).toLowerCase() + name.slice(6);
        checks.push(name);
        fields[name] = extra[field];
      }
    });
    return checks.every(function (name) {
      var wanted = container.dataset[name];
      return wanted === undefined || wanted === String(fields[name] == null ? "" : fields[name]);
    });
  }

  function renderContribution(container, data) {
    var template = container.querySelector("template");
    var item;
    if (template) {
      item = template.content.firstElementChild.cloneNode(true);
    } else {
      item = document.createElement("li");
      item.setAttribute("data-body", "");
    }
    item.dataset.contributionId = data.id;
    // The text in its own language, so a screen reader reads it with the right voice.
    item.querySelectorAll("[data-body]").forEach(function (el) {
      el.textContent = data.body;
      if (data.language) el.lang = data.language;
    });
    if (item.hasAttribute("data-body")) {
      item.textContent = data.body;
      if (data.language) item.lang = data.language;
    }
    ["votesFor", "averageFor", "countFor"].forEach(function (name) {
      var attribute = "data-" + name.replace(/[A-Z]/g, function (c) { return "-" + c.toLowerCase(); });
      item.querySelectorAll("[" + attribute + "]").forEach(function (el) { el.dataset[name] = data.id; });
    });
    item.querySelectorAll("[data-field]").forEach(function (el) {
      var value = (data.data || {})[el.dataset.field];
      el.textContent = value == null ? "" : value;
    });
    item.querySelectorAll("input[name=id], input[name=contribution], input[data-fill-id]").forEach(function (el) { el.value = data.id; });
    item.querySelectorAll("form[data-action-template]").forEach(function (form) {
      form.action = form.dataset.actionTemplate.replace("__id__", data.id);
    });
    if (data.transcribed) item.classList.add("transcribed");
    if (data.hidden) item.classList.add("is-hidden");
    return item;
  }

  // Say something to screen readers without moving anything: the page's polite status line.
  function announce(text) {
    var status = document.getElementById("live-status");
    if (!status || !text) return;
    // A new text node, even for the same words, so that it is read again.
    status.textContent = "";
    setTimeout(function () { status.textContent = text; }, 50);
  }

  // The thresholds at which a timer's time left is said out loud (data-say-<seconds>);
  // the timer itself (role=timer) stays silent.
  var TIMER_THRESHOLDS = [300, 60, 0];

  function updateTimers() {
    document.querySelectorAll("[data-timer]").forEach(function (timer) {
      var endsAt = timer.dataset.endsAt;
      var text = timer.querySelector("[data-timer-text]");
      if (!endsAt || !text) { timer.hidden = true; return; }
      timer.hidden = false;
      var left = Math.max(0, Math.round((Date.parse(endsAt) - Date.now()) / 1000));
      var minutes = Math.floor(left / 60), seconds = left % 60;
      text.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
      timer.classList.toggle("timer-over", left === 0);
      timer.querySelectorAll("[data-times-up]").forEach(function (el) { el.hidden = left > 0; });
      // Crossing a threshold while the page is open, not loading a page already past it.
      var previous = timer.palabreLeft;
      timer.palabreLeft = left;
      if (previous === undefined || timer.dataset.endsAt !== timer.palabreEndsAt) {
        timer.palabreEndsAt = timer.dataset.endsAt;
        return;
      }
      TIMER_THRESHOLDS.forEach(function (threshold) {
        if (previous > threshold && left <= threshold) announce(timer.getAttribute("data-say-" + threshold));
      });
    });
  }

  // Where the keyboard was, kept across the reload a new phase brings (or a staff form's
  // post), so that nobody starts again from the top of the page.
  function focusKey() { return "palabre:focus:" + location.pathname; }
  // Only a page that comes straight back (a reload, a post and its redirect) takes it up.
  var FOCUS_KEPT_MS = 15000;

  function focusSelector(el) {
    if (!el || el === document.body || el.id === "main") return null;
    if (el.id) return "#" + CSS.escape(el.id);
    var form = el.form || el.closest("form");
    if (form && el.name) {
      var selector = 'form[action="' + CSS.escape(form.getAttribute("action") || "") + '"] [name="' + CSS.escape(el.name) + '"]';
      return el.value !== undefined && el.tagName === "BUTTON" ? selector + '[value="' + CSS.escape(el.value) + '"]' : selector;
    }
    if (form && form.getAttribute("action")) {
      return 'form[action="' + CSS.escape(form.getAttribute("action")) + '"] ' + el.tagName.toLowerCase();
    }
    return null;
  }

  function keepFocus() {
    try {
      var selector = focusSelector(document.activeElement);
      if (selector) sessionStorage.setItem(focusKey(), JSON.stringify({ selector: selector, at: Date.now() }));
      else sessionStorage.removeItem(focusKey());
    } catch (e) { /* storage refused: the focus starts at the page again */ }
  }

  // After a reload: back to the control that had the focus if it is still there; after a
  // new phase, to the page's content, so a screen reader reads the new phase first.
  function restoreFocus() {
    var kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(focusKey()));
      sessionStorage.removeItem(focusKey());
    } catch (e) { return; }
    if (!kept || !kept.selector || Date.now() - kept.at > FOCUS_KEPT_MS) return;
    var selector = kept.selector;
    var target = null;
    try { target = document.querySelector(selector); } catch (e) { target = null; }
    if (!target || target.disabled || target.offsetParent === null) target = document.getElementById("main");
    if (target) target.focus({ preventScroll: false });
  }

  // A button with data-enabled-if="<selector>" is enabled only while the selector matches
  // something (the queue has someone); data-shown-if-none shows an element while it matches nothing.
  function updateGuards() {
    document.querySelectorAll("[data-enabled-if]").forEach(function (el) {
      el.disabled = !document.querySelector(el.dataset.enabledIf);
    });
    document.querySelectorAll("[data-shown-if-none]").forEach(function (el) {
      el.hidden = !!document.querySelector(el.dataset.shownIfNone);
    });
  }

  function live(options) {
    var code = options.code, view = options.view, lastSeq = options.seq || 0;
    var messages = options.messages || {};
    var outboxKey = "palabre:outbox:" + code + ":" + view;
    // Anything too big to ever be accepted (kept by an older page) is dropped.
    var outbox = readJSON(outboxKey, []).filter(fits);
    var banner = document.getElementById("live-message");

    function say(text) {
      if (!banner) return;
      banner.textContent = text || "";
      banner.hidden = !text;
    }

    var socket = io({
      auth: function (cb) { cb({ session: code, view: view, last_seq: lastSeq }); },
      // WebSocket first: two round trips fewer than starting with long-polling,
      // which matters at 400 ms of latency; polling remains the fallback, except
      // with several workers, which allow WebSocket only (see docs/deploy.md).
      transports: options.transports || ["websocket", "polling"],
      reconnectionDelayMax: 10000
    });

    function saveOutbox() { writeJSON(outboxKey, outbox); }

    function forget(cid) {
      if (retries[cid]) { clearTimeout(retries[cid].timer); delete retries[cid]; }
      outbox = outbox.filter(function (item) { return item.payload.cid !== cid; });
      saveOutbox();
      document.querySelectorAll('[data-pending="' + cid + '"]').forEach(function (el) { el.remove(); });
    }

    function putBack(item) {
      // Nothing typed is lost: a refused text goes back into its empty box.
      if (item.form && item.payload.body !== undefined) {
        var field = item.form.querySelector("textarea[name=body]");
        if (field && !field.value) field.value = item.payload.body;
      }
    }

    // Send again later: after no answer at all, or a refusal that says to retry.
    // Kept beside the outbox, not in it: timers mean nothing after a reload.
    var retries = {};
    function retryLater(item) {
      var cid = item.payload.cid;
      var retry = retries[cid] || (retries[cid] = { timer: null, delay: RETRY_FIRST_MS / 2 });
      if (retry.timer) return;
      retry.delay = Math.min(retry.delay * 2, RETRY_MAX_MS);
      retry.timer = setTimeout(function () {
        retry.timer = null;
        if (outbox.indexOf(item) !== -1) transmit(item);
      }, retry.delay * (0.5 + Math.random() / 2)); // spread a room's resends
    }

    function transmit(item) {
      if (!socket.connected) return;
      socket.timeout(15000).emit(item.event, item.payload, function (err, ack) {
        if (err) { retryLater(item); return; } // no answer: kept, and resent
        if (ack && !ack.ok && ack.retry) {
          say(ack.error);
          retryLater(item);
          return;
        }
        forget(item.payload.cid);
        if (ack && !ack.ok) {
          say(ack.error);
          putBack(item);
        } else {
          say("");
          announce(messages.sent);
        }
        document.dispatchEvent(new CustomEvent("palabre:ack", { detail: { item: item, ack: ack } }));
      });
    }

    function send(event, payload, form) {
      payload.cid = payload.cid || newId();
      var item = { event: event, payload: payload };
      Object.defineProperty(item, "form", { value: form, enumerable: false });
      if (!fits(item)) {
        say(messages.tooLong);
        putBack(item);
        return null;
      }
      outbox.push(item);
      saveOutbox();
      var list = form && form.dataset.pendingIn && document.querySelector(form.dataset.pendingIn);
      if (list && payload.body) {
        var pending = document.createElement("li");
        pending.className = "pending";
        pending.dataset.pending = payload.cid;
        pending.textContent = payload.body + " — " + (messages.sending || "…");
        list.appendChild(pending);
      }
      transmit(item);
      return payload.cid;
    }

    document.addEventListener("submit", function (e) {
      var form = e.target;
      var event = form.dataset && form.dataset.liveEvent;
      if (!event) return;
      e.preventDefault();
      var payload = formPayload(form);
      if (e.submitter && e.submitter.name && e.submitter.name !== "submit") {
        payload[e.submitter.name] = e.submitter.value;
      }
      if (send(event, payload, form) === null) return; // refused here: the text stays
      var cidField = form.querySelector("input[name=cid]");
      if (cidField) cidField.value = newId();
      var body = form.querySelector("textarea[name=body]");
      if (body) body.value = "";
    });

    var handlers = {
      "contribution.added": function (data) {
        document.querySelectorAll("[data-contributions]").forEach(function (container) {
          if (!matches(container, data)) return;
          if (container.querySelector('[data-contribution-id="' + data.id + '"]')) return;
          var list = container.matches("ul, ol") ? container : container.querySelector("ul, ol") || container;
          var item = renderContribution(container, data);
          if (container.dataset.newestFirst !== undefined) list.insertBefore(item, list.firstChild);
          else list.appendChild(item);
        });
        document.querySelectorAll("[data-count-of]").forEach(function (counter) {
          if (counter.dataset.countOf === data.kind && matches(counter, { kind: data.kind, reply_to: data.reply_to, data: data.data }))
            counter.textContent = Number(counter.textContent || 0) + 1;
        });
      },
      "contribution.changed": function (data) {
        // Leave the lists it no longer belongs to (a called person leaves the queue), join new ones.
        document.querySelectorAll("[data-contributions]").forEach(function (container) {
          if (matches(container, data)) return;
          container.querySelectorAll('[data-contribution-id="' + data.id + '"]').forEach(function (el) { el.remove(); });
        });
        document.querySelectorAll('[data-contribution-id="' + data.id + '"] [data-field]').forEach(function (el) {
          var value = (data.data || {})[el.dataset.field];
          el.textContent = value == null ? "" : value;
        });
        document.querySelectorAll("[data-contributions]").forEach(function (container) {
          if (matches(container, data) && !container.querySelector('[data-contribution-id="' + data.id + '"]')) {
            var list = container.matches("ul, ol") ? container : container.querySelector("ul, ol") || container;
            list.appendChild(renderContribution(container, data));
          }
        });
      },
      "contribution.hidden": function (data) {
        document.querySelectorAll('[data-contribution-id="' + data.id + '"]').forEach(function (el) {
          if (el.closest("[data-show-hidden]")) el.classList.add("is-hidden");
          else el.remove();
        });
      },
      "contribution.restored": function (data) {
        document.querySelectorAll('[data-contribution-id="' + data.id + '"]').forEach(function (el) {
          el.classList.remove("is-hidden");
        });
        handlers["contribution.added"](data);
      },
      "votes.changed": function (data) {
        document.querySelectorAll('[data-votes-for="' + data.id + '"]').forEach(function (el) {
          el.textContent = data.total;
          var item = el.closest("[data-contribution-id]");
          if (item) item.dataset.votes = data.total;
        });
        document.querySelectorAll('[data-average-for="' + data.id + '"]').forEach(function (el) {
          el.textContent = data.average == null ? "–" : Number(data.average).toFixed(1);
        });
        document.querySelectorAll('[data-count-for="' + data.id + '"]').forEach(function (el) { el.textContent = data.count; });
        document.querySelectorAll("[data-ranking]").forEach(function (list) {
          Array.from(list.children)
            .sort(function (a, b) { return Number(b.dataset.votes || 0) - Number(a.dataset.votes || 0); })
            .forEach(function (child) { list.appendChild(child); });
        });
      },
      "participants.changed": function (data) {
        document.querySelectorAll("[data-participant-count]").forEach(function (el) { el.textContent = data.count; });
      },
      "timer.changed": function (data) {
        document.querySelectorAll("[data-timer]").forEach(function (timer) { timer.dataset.endsAt = data.timer_ends_at || ""; });
        updateTimers();
      },
      "phase.changed": reloadSpread,
      // A facilitator edited the session (a question, a language, a table): the page again,
      // as for a new phase. Drafts being typed come back (drafts.js).
      "session.changed": reloadSpread
    };

    function reloadSpread() {
      // Each phase has its own page; spread reloads so a full room does not arrive at once.
      outbox.length ? setTimeout(function () { location.reload(); }, 1500) :
        setTimeout(function () { location.reload(); }, Math.random() * 1200);
    }

    function apply(envelope) {
      var handler = handlers[envelope.type];
      if (handler) handler(envelope.data);
      updateGuards();
      document.dispatchEvent(new CustomEvent("palabre:event", { detail: envelope }));
    }

    // Sequenced events are applied in order of their numbers, each once.
    // With several workers two can cross on the way: one that arrives
    // early waits in `early` until those before it are in. A number may
    // also be missing because its event went to rooms this page is not in;
    // after GAP_WAIT_MS the server is asked what there was (its answer
    // says up to which number it looked), so nothing is dropped or stuck.
    // `lastSeq` stays the number up to which everything is applied: the
    // server replays from it after a reconnect.
    var early = {}, gapTimer = null;
    function applyInOrder() {
      while (early[lastSeq + 1]) {
        var next = early[lastSeq + 1];
        delete early[lastSeq + 1];
        lastSeq += 1;
        apply(next);
      }
      var waiting = Object.keys(early).length > 0;
      if (waiting && !gapTimer) gapTimer = setTimeout(fillGap, GAP_WAIT_MS);
      if (!waiting && gapTimer) { clearTimeout(gapTimer); gapTimer = null; }
    }
    function fillGap() {
      gapTimer = null;
      if (!socket.connected) return; // the reconnection replays instead
      socket.timeout(RETRY_FIRST_MS).emit("replay", { after: lastSeq }, function (error, reply) {
        if (error || !reply) { applyInOrder(); return; }
        if (reply.resync) { location.reload(); return; }
        if (!reply.ok) return;
        reply.events.forEach(function (envelope) {
          if (envelope.seq > lastSeq) early[envelope.seq] = envelope;
        });
        // Up to reply.seq, a number the answer does not hold was not for this page.
        while (lastSeq < reply.seq) {
          lastSeq += 1;
          if (early[lastSeq]) { apply(early[lastSeq]); delete early[lastSeq]; }
        }
        applyInOrder();
      });
    }

    socket.on("event", function (envelope) {
      // Passing states (head counts) carry no seq: they are sent afresh, not replayed.
      if (envelope.seq === undefined) { apply(envelope); return; }
      if (envelope.seq <= lastSeq || early[envelope.seq]) return; // already had it
      early[envelope.seq] = envelope;
      applyInOrder();
    });
    socket.on("resync", function () { location.reload(); });
    socket.on("connect", function () {
      say("");
      document.documentElement.classList.add("live-connected");
      outbox.forEach(transmit);
    });
    socket.on("disconnect", function () {
      document.documentElement.classList.remove("live-connected");
      say(messages.offline);
    });

    document.documentElement.classList.add("live");
    window.addEventListener("pagehide", keepFocus);
    restoreFocus();
    updateTimers();
    setInterval(updateTimers, 1000);
    return { socket: socket, send: send, lastSeq: function () { return lastSeq; } };
  }

  window.Palabre = { live: live };
})();
