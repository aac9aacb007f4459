// The 24-hour window's live parts of the conversation screen: the countdown (from the server's
// closes_at, corrected by the server/browser clock difference), the template picker's preview, the
// composer refreshed when the window opens or closes, and the agent's typing passed on (throttled).
// Text is only ever inserted with textContent.
(function () {
  "use strict";

  var TYPING_EVERY_MS = 5000; // the server passes it on at most every typing_refresh_seconds anyway
  var lastTyping = 0;

  function banner() { return document.getElementById("service-window"); }

  function remainingText(ms) {
    var minutes = Math.ceil(ms / 60000);
    var hours = Math.floor(minutes / 60);
    var seconds = Math.floor(ms / 1000) % 60;
    if (hours) return hours + " h " + (minutes % 60) + " min left";
    if (minutes > 1) return minutes + " min left";
    return seconds + " s left";
  }

  function tick() {
    var element = banner();
    if (!element || !element.dataset.closesAt) return;
    if (element.dataset.skew === undefined) {
      // Measured once per rendering: server time minus this browser's time.
      element.dataset.skew = String(Date.parse(element.dataset.serverNow) - Date.now());
    }
    var left = Date.parse(element.dataset.closesAt) - (Date.now() + Number(element.dataset.skew));
    var countdown = element.querySelector("[data-countdown]");
    if (!countdown) return;
    if (left > 0) {
      countdown.textContent = remainingText(left);
    } else if (!element.dataset.expired) {
      element.dataset.expired = "1";
      refreshComposer(); // now only templates
    }
  }

  function refreshComposer() {
    var composer = document.getElementById("composer");
    if (!composer || !window.htmx) return;
    htmx.ajax("GET", composer.dataset.refreshUrl, { target: "#composer", swap: "outerHTML" });
  }

  // A new customer message may have re-opened the window: check after each live transcript update,
  // and swap the composer only when the window's state changed (a draft in the box is kept).
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var composer = document.getElementById("composer");
    if (!target || target.id !== "transcript" || !composer || composer.dataset.windowState === "open") return;
    fetch(composer.dataset.refreshUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var state = /data-window-state="(\w+)"/.exec(html);
        if (state && state[1] !== composer.dataset.windowState) refreshComposer();
      });
  });

  // --- template picker -------------------------------------------------------------------
  function preview(fieldset) {
    var values = Array.prototype.map.call(fieldset.querySelectorAll("input[name=value]"), function (input) {
      return input.value;
    });
    var target = fieldset.querySelector(".template-preview");
    target.textContent = target.dataset.body.replace(/\{\{(\d+)\}\}/g, function (_, number) {
      return values[Number(number) - 1] || "{{" + number + "}}";
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.id !== "template-key") return;
    var chosen = event.target.value;
    document.querySelectorAll(".template-fields").forEach(function (fieldset) {
      var on = fieldset.dataset.template === chosen;
      fieldset.hidden = !on;
      fieldset.disabled = !on; // only the chosen template's values are sent
    });
  });

  document.addEventListener("input", function (event) {
    var fieldset = event.target.closest && event.target.closest(".template-fields");
    if (fieldset) preview(fieldset);
    if (event.target.id === "reply-text" && event.target.value.trim()) typing(event.target.form);
  });

  // --- "typing…" for the customer ----------------------------------------------------------
  function typing(form) {
    var now = Date.now();
    if (!form || now - lastTyping < TYPING_EVERY_MS) return;
    lastTyping = now;
    var url = form.getAttribute("action").replace(/\/reply$/, "/typing");
    fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": document.body.dataset.csrf },
      credentials: "same-origin",
    }).catch(function () { /* a missed "typing…" is harmless */ });
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id === "reply-form") lastTyping = 0; // the reply hides "typing…" on the phone
  });

  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
})();
