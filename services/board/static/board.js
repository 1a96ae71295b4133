// Live updates for the gendan board.
//
// The page's live region (the element marked data-live) names its event
// stream in data-events: "/events" for every order, "/events?order=<id>"
// on an order's page. On each event this script asks the server for the
// current page again with the header X-Board-Fragment: 1, which answers
// with the live region's HTML alone, and swaps it in. Events are gathered
// for 400 ms so a burst costs one request. While a form in the region is
// being filled in, the swap waits, so nobody's typing is lost. After each
// swap, <body data-board-updated> counts the updates (tests wait on it).
//
// Without JavaScript, or without EventSource, the pages are plain links
// and forms that show what the services said when they were loaded.
(function () {
  "use strict";

  var live = document.querySelector("[data-live]");
  if (!live || typeof window.EventSource !== "function" || typeof window.fetch !== "function") {
    return;
  }
  var status = document.querySelector("[data-live-status]");
  var DEBOUNCE_MS = 400;
  var EDITING_RETRY_MS = 1500;
  var timer = null;
  var loading = false;
  var again = false;
  var updates = 0;

  // The header's status line is a polite live region: it changes only
  // when the state does, not on every update.
  function say(text) {
    if (status && status.textContent !== text) {
      status.textContent = text;
    }
  }

  // A control in the live region the user is using or has changed.
  function editing() {
    var active = document.activeElement;
    if (active && active !== document.body && live.contains(active) &&
        /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
      return true;
    }
    var controls = live.querySelectorAll("input, select, textarea");
    for (var i = 0; i < controls.length; i += 1) {
      var control = controls[i];
      if (control.type === "hidden" || control.type === "submit") {
        continue;
      }
      if (control.tagName === "SELECT") {
        for (var j = 0; j < control.options.length; j += 1) {
          if (control.options[j].selected !== control.options[j].defaultSelected) {
            return true;
          }
        }
      } else if (control.type === "checkbox" || control.type === "radio") {
        if (control.checked !== control.defaultChecked) {
          return true;
        }
      } else if (control.value !== control.defaultValue) {
        return true;
      }
    }
    return false;
  }

  // Which <details> are open, by position, to open them again after a swap.
  function openDetails() {
    var open = [];
    var all = live.querySelectorAll("details");
    for (var i = 0; i < all.length; i += 1) {
      if (all[i].open) {
        open.push(i);
      }
    }
    return open;
  }

  function reopen(open) {
    var all = live.querySelectorAll("details");
    open.forEach(function (i) {
      if (all[i]) {
        all[i].open = true;
      }
    });
  }

  function schedule(delay) {
    if (timer === null) {
      timer = window.setTimeout(refresh, delay);
    }
  }

  function refresh() {
    timer = null;
    if (loading) {
      again = true;
      return;
    }
    if (editing()) {
      say("Live updates paused while you fill in a form");
      schedule(EDITING_RETRY_MS);
      return;
    }
    loading = true;
    window.fetch(window.location.pathname + window.location.search, {
      headers: { "X-Board-Fragment": "1" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.text();
    }).then(function (html) {
      var open = openDetails();
      live.innerHTML = html;
      reopen(open);
      updates += 1;
      document.body.setAttribute("data-board-updated", String(updates));
      say("Live");
      if (status) {
        status.setAttribute("title", "Updated " + new Date().toLocaleTimeString());
      }
    }).catch(function (error) {
      say("Live update failed (" + error.message + "); showing the page as it was");
    }).then(function () {
      loading = false;
      if (again) {
        again = false;
        schedule(DEBOUNCE_MS);
      }
    });
  }

  var source = new window.EventSource(live.getAttribute("data-events") || "/events");
  var lost = false;
  source.addEventListener("open", function () {
    say("Live");
    if (lost) {
      // Events may have passed while the stream was down.
      lost = false;
      schedule(DEBOUNCE_MS);
    }
  });
  source.addEventListener("order", function () {
    schedule(DEBOUNCE_MS);
  });
  source.addEventListener("error", function () {
    // EventSource reconnects by itself.
    lost = true;
    say("Live updates reconnecting…");
  });
})();
