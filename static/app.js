// gatecheck's only script: live probe progress, the browser's own check of
// the site, times in the reader's time zone, evidence opened for printing,
// and the copy button. Every page works without it.
(function () {
  "use strict";

  // The browser's own view of the site: a case page that carries
  // data-vantage-post has this browser try the case's URL and post what
  // happened, once for the probe run named. The fetch is no-cors (the
  // answer is opaque: it tells "a server answered" from "could not
  // connect", never the status), sends no cookies and no referrer, and
  // gives up after the timeout. The page's policy lets it reach that one
  // origin: a redirect to another is blocked, and fails the fetch, but the
  // policy violation it raises shows that a server answered.
  var vantageDone = Promise.resolve();
  var vantage = document.querySelector("[data-vantage-post]");
  if (vantage && window.fetch && window.URLSearchParams) {
    vantageDone = checkFromHere(vantage);
  }

  function checkFromHere(el) {
    var out = el.querySelector("[data-vantage-result]");
    var show = function (text) {
      el.hidden = false;
      if (out) out.textContent = text;
    };
    var post = function (result, ms, reason) {
      var body = new URLSearchParams();
      body.set("run", el.getAttribute("data-vantage-run"));
      body.set("result", result);
      if (ms >= 0) body.set("ms", String(Math.round(ms)));
      if (reason) body.set("reason", reason);
      return fetch(el.getAttribute("data-vantage-post"), {method: "POST", body: body, credentials: "same-origin"})
        .then(function (r) { return r.status === 204; }, function () { return false; });
    };
    var skip = el.getAttribute("data-vantage-skip");
    if (!skip && !window.AbortController) skip = "unsupported";
    var stored = function (ok) {
      el.setAttribute("data-vantage-stored", String(ok));
      return ok;
    };
    if (skip) {
      el.hidden = false;
      return post("skipped", -1, skip).then(stored);
    }
    var timeout = Number(el.getAttribute("data-vantage-timeout")) || 8000;
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, timeout);
    var redirected = false;
    var blocked = function (e) {
      if ((e.effectiveDirective || e.violatedDirective || "").indexOf("connect-src") === 0) redirected = true;
    };
    document.addEventListener("securitypolicyviolation", blocked);
    var start = Date.now();
    show("Trying the site from your browser…");
    return fetch(el.getAttribute("data-vantage-url"), {
      mode: "no-cors", cache: "no-store", credentials: "omit", redirect: "follow",
      referrerPolicy: "no-referrer", signal: ctl.signal
    }).then(function () { return "answered"; }, function () {
      if (ctl.signal.aborted) return "timeout";
      // The violation event may come just after the failure.
      return new Promise(function (done) {
        setTimeout(function () { done(redirected ? "redirected" : "unreachable"); }, 100);
      });
    }).then(function (result) {
      clearTimeout(timer);
      document.removeEventListener("securitypolicyviolation", blocked);
      var ms = Date.now() - start;
      show({
        answered: "A server answered (after " + ms + " ms)",
        redirected: "A server answered with a redirect to another site (after " + ms + " ms)",
        unreachable: "Could not connect (after " + ms + " ms)",
        timeout: "No answer within " + Math.round(timeout / 1000) + " s"
      }[result]);
      el.setAttribute("data-vantage-done", result);
      return post(result, ms).then(stored);
    }).then(function (ok) {
      // The step shown depends on this view: show the one it leads to.
      if (ok && el.hasAttribute("data-vantage-reload")) window.location.reload();
    });
  }

  // Live progress: the probing page moves its plain steps on and lists the
  // checks (in its details) as they complete, then reloads into the
  // wizard's first step.
  var live = document.querySelector("[data-events]");
  if (live && window.EventSource) {
    var list = document.querySelector("[data-checks]");
    var status = document.querySelector("[data-queue]");
    var steps = document.querySelectorAll("[data-steps] > li");
    var bar = document.querySelector("[data-progress]");
    var stepWords = {done: "done", running: "under way", waiting: "waiting"};
    // The steps the server drew done stay done while the stream replays
    // the checks from the first.
    var kinds = {}, failed = {};
    steps.forEach(function (li) {
      if (li.getAttribute("data-state") !== "done") return;
      li.getAttribute("data-kinds").split(" ").forEach(function (k) { kinds[k] = true; });
    });
    // The same rule as templates.Progress: a step is done once a check of
    // its kinds came in; while the check runs, the lookup runs first,
    // then every step it unlocks at once.
    var mark = function () {
      var done = 0, lookupDone = false;
      steps.forEach(function (li, i) {
        var st = "waiting", problem = li.hasAttribute("data-problem");
        li.getAttribute("data-kinds").split(" ").forEach(function (k) {
          if (kinds[k]) st = "done";
          if (failed[k]) problem = true;
        });
        if (st === "done") done++;
        else if (i === 0 || lookupDone) st = "running";
        if (i === 0) lookupDone = st === "done";
        li.setAttribute("data-state", st);
        if (problem) li.setAttribute("data-problem", "");
        var words = li.querySelector("[data-state-words]");
        if (words) words.textContent = problem && st === "done" ? "(done: a problem was found here)" : "(" + stepWords[st] + ")";
      });
      if (bar) bar.value = done;
    };
    var es = new EventSource(live.getAttribute("data-events"));
    // Every connection (and reconnection) replays the run's checks from
    // the first; the ones already on the page are skipped.
    var received = 0;
    es.addEventListener("open", function () { received = 0; });
    es.addEventListener("check", function (e) {
      received++;
      live.setAttribute("data-received", String(received));
      var c = JSON.parse(e.data);
      kinds[c.kind] = true;
      if (c.status === "fail") failed[c.kind] = true;
      mark();
      if (received <= list.children.length) return;
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
        took.textContent = " (" + (c.duration_ms >= 1000 ? (c.duration_ms / 1000).toFixed(2) + " s" :
          c.duration_ms < 10 ? c.duration_ms.toFixed(1) + " ms" : Math.round(c.duration_ms) + " ms") + ")";
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
      // The first step may depend on the browser's view: wait for it (at
      // most its timeout) before moving on.
      vantageDone.then(function () { window.location.reload(); });
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

  // Times are written in UTC (the exact value in datetime): shown in the
  // reader's own time zone where the browser can say which, with the date
  // when it is not today's.
  if (window.Intl && Intl.DateTimeFormat) {
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var t = new Date(el.getAttribute("datetime"));
      if (isNaN(t.getTime())) return;
      var today = new Date().toDateString() === t.toDateString();
      var opts = {hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"};
      if (!today) { opts.day = "numeric"; opts.month = "short"; }
      try {
        el.textContent = new Intl.DateTimeFormat(undefined, opts).format(t);
        el.title = el.getAttribute("datetime").replace("T", " ").replace("Z", " UTC");
        el.setAttribute("data-localised", "true");
      } catch (e) { /* keep the UTC text */ }
    });
  }

  // Printed, a case shows its evidence: the closed details are opened for
  // the print and closed again after.
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) {
      d.open = true;
      opened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });

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
