// Kesar Lane inbox: CSRF header for htmx, live updates over SSE, quick replies on "/".
// Customer text is only ever inserted with textContent / value, never as HTML.
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = document.body.dataset.csrf;
  });

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, wait);
    };
  }

  // --- transcript scrolling -------------------------------------------------------------
  function transcript() { return document.getElementById("transcript"); }

  function nearBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 80;
  }

  function scrollToBottom() {
    var element = transcript();
    if (element) element.scrollTop = element.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", scrollToBottom);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && (event.detail.target.id === "conversation" || event.detail.target.id === "transcript")) {
      scrollToBottom();
    }
  });

  // --- live updates -----------------------------------------------------------------------
  var refreshList = debounce(function () {
    var list = document.getElementById("conversation-list");
    if (list) {
      htmx.ajax("GET", list.dataset.refreshUrl, { target: "#conversation-list", swap: "outerHTML" });
    }
  }, 250);

  var refreshConversation = debounce(function () {
    var current = transcript();
    if (current) {
      var stick = nearBottom(current);
      htmx.ajax("GET", current.dataset.refreshUrl, { target: "#transcript", swap: "outerHTML" }).then(function () {
        if (stick) scrollToBottom();
      });
    }
    var panel = document.getElementById("panel");
    // Do not pull the panel away from under an agent who is typing in it.
    if (panel && !panel.contains(document.activeElement)) {
      // Its own source element: a request from the same element as the transcript's would be dropped.
      htmx.ajax("GET", panel.dataset.refreshUrl, { source: panel, target: "#panel", swap: "outerHTML" });
    }
  }, 150);

  function startLiveUpdates() {
    if (!document.getElementById("conversation-list") && !transcript()) return;
    var source = new EventSource("/live");
    source.addEventListener("change", function (event) {
      var ids = JSON.parse(event.data).ids || [];
      refreshList();
      var current = transcript();
      if (current && ids.indexOf(Number(current.dataset.conversationId)) !== -1) refreshConversation();
    });
    document.body.dataset.live = "connected";
  }

  document.addEventListener("DOMContentLoaded", startLiveUpdates);

  // --- reply box: Ctrl+Enter sends, "/" opens quick replies -------------------------------
  function quickReplies() {
    var data = document.getElementById("quick-replies-data");
    return data ? JSON.parse(data.textContent) : [];
  }

  function fillPlaceholders(text, box) {
    return text
      .replace(/\{first_name\}/g, box.dataset.firstName || "")
      .replace(/\{agent\}/g, box.dataset.agent || "");
  }

  var menuState = { items: [], selected: 0, start: -1 };

  function menu() { return document.getElementById("quick-reply-menu"); }

  function closeMenu() {
    var element = menu();
    if (element) element.hidden = true;
    menuState.items = [];
  }

  function renderMenu() {
    var element = menu();
    element.replaceChildren();
    menuState.items.forEach(function (reply, index) {
      var item = document.createElement("li");
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", index === menuState.selected ? "true" : "false");
      item.dataset.shortcut = reply.shortcut;
      var name = document.createElement("span");
      name.className = "shortcut";
      name.textContent = "/" + reply.shortcut;
      var preview = document.createElement("span");
      preview.textContent = reply.text;
      item.append(name, preview);
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();
        choose(index);
      });
      element.appendChild(item);
    });
    element.hidden = menuState.items.length === 0;
  }

  function updateMenu(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([\w-]*)$/.exec(before);
    if (!match) return closeMenu();
    var typed = match[2].toLowerCase();
    menuState.start = before.length - typed.length - 1;
    menuState.items = quickReplies().filter(function (reply) { return reply.shortcut.indexOf(typed) === 0; });
    menuState.selected = 0;
    renderMenu();
  }

  function choose(index) {
    var box = document.getElementById("reply-text");
    var reply = menuState.items[index];
    if (!box || !reply) return;
    var text = fillPlaceholders(reply.text, box);
    var after = box.value.slice(box.selectionStart);
    box.value = box.value.slice(0, menuState.start) + text + after;
    var caret = menuState.start + text.length;
    box.setSelectionRange(caret, caret);
    closeMenu();
    box.focus();
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "reply-text") updateMenu(event.target);
  });

  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (box.id !== "reply-text") return;
    var open = menu() && !menu().hidden && menuState.items.length;
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      var step = event.key === "ArrowDown" ? 1 : -1;
      menuState.selected = (menuState.selected + step + menuState.items.length) % menuState.items.length;
      renderMenu();
    } else if (open && (event.key === "Enter" || event.key === "Tab")) {
      event.preventDefault();
      choose(menuState.selected);
    } else if (open && event.key === "Escape") {
      closeMenu();
    } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      box.form.requestSubmit();
    }
  });

  document.addEventListener("focusout", function (event) {
    if (event.target.id === "reply-text") setTimeout(closeMenu, 150);
  });
})();
