// gatecheck's only script: live probe progress and the copy button. Every
// page works without it.
(function () {
  "use strict";

  // Live progress: the probing page lists checks as they complete, then
  // reloads into the wizard's first step.
  var live = document.querySelector("[data-events]");
  if (live && window.EventSource) {
    var list = document.querySelector("[data-checks]");
    var status = document.querySelector("[data-queue]");
    var es = new EventSource(live.getAttribute("data-events"));
    // Every connection (and reconnection) replays the run's checks from
    // the first; the ones already on the page are skipped.
    var received = 0;
    es.addEventListener("open", function () { received = 0; });
    es.addEventListener("check", function (e) {
      received++;
      live.setAttribute("data-received", String(received));
      if (received <= list.children.length) return;
      var c = JSON.parse(e.data);
      var li = document.createElement("li");
      var st = document.createElement("span");
      st.className = "status-" + c.status;
      st.textContent = c.status;
      var name = document.createElement("span");
      name.textContent = c.name;
      var detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = c.detail;
      if (c.duration_ms > 0) {
        var took = document.createElement("span");
        took.className = "muted small";
        took.textContent = " (" + (c.duration_ms >= 1000 ? (c.duration_ms / 1000).toFixed(2) + " s" : Math.round(c.duration_ms) + " ms") + ")";
        detail.append(took);
      }
      li.append(st, name, detail);
      list.append(li);
    });
    es.addEventListener("queue", function (e) {
      if (status) status.textContent = e.data;
    });
    es.addEventListener("done", function () {
      es.close();
      window.location.reload();
    });
  }

  // "Checked 23 s ago" stays true while the page is open.
  var agos = document.querySelectorAll("time[data-ago]");
  if (agos.length) {
    var ago = function (t) {
      var s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
      if (s < 5) return "just now";
      if (s < 60) return Math.floor(s) + " s ago";
      if (s < 3600) return Math.floor(s / 60) + " min ago";
      return Math.floor(s / 3600) + " h ago";
    };
    setInterval(function () {
      agos.forEach(function (el) { el.textContent = ago(el.getAttribute("datetime")); });
    }, 5000);
  }

  // Copy buttons copy the text of the element their data-copy names.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var el = document.getElementById(btn.getAttribute("data-copy"));
      var done = function () {
        var old = btn.textContent;
        btn.textContent = "Copied";
        setTimeout(function () { btn.textContent = old; }, 2000);
      };
      // The old way works where the clipboard API is missing or refused
      // (no permission, an insecure origin).
      var fallback = function () {
        el.select();
        document.execCommand("copy");
        done();
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(el.value || el.textContent).then(done, fallback);
      } else {
        fallback();
      }
    });
  });
})();
