// Live parts without a build step: every few seconds the page's <main id="live"> is fetched
// again (the same URL with X-Live: 1 returns only that part) and swapped in. It waits while
// the user is typing in a form that asks for it (data-live-pause), so nothing typed is lost.
(function () {
  "use strict";
  // An action's line is said once, on the page its redirect named with a token (done=...).
  // Said, the token leaves the address bar: a reload, a bookmark or a copied address would
  // carry a token that says nothing any more.
  var here = new URL(window.location.href);
  if (here.searchParams.has("done")) {
    here.searchParams.delete("done");
    window.history.replaceState(window.history.state, "", here.pathname + here.search + here.hash);
  }
  var period = Number(document.body.dataset.refreshMs);
  // 0 marks a page with nothing live (the login page): refreshing it would only wipe the
  // name and password being typed into it.
  if (!(period > 0)) { return; }
  function busy(main) {
    var active = document.activeElement;
    return active && main.contains(active) && active.closest("[data-live-pause]") !== null;
  }
  // What a control does, in terms that outlive a refresh: the same action on the same case or
  // build, never "the third button" (a new row would move that onto another case).
  function identity(el) {
    var form = el.form || null;
    var target = form ? form.elements.namedItem("target") : null;
    var details = el.tagName === "SUMMARY" ? el.closest("details") : null;
    return [el.tagName, el.id, el.getAttribute("data-test"), el.getAttribute("href"),
            el.getAttribute("name"), el.getAttribute("value"),
            form ? form.getAttribute("action") : "", target ? target.value : "",
            details ? details.getAttribute("data-case") : ""].join("\u0000");
  }
  // A keyboard user's place and the trails opened on the History page, kept across a swap.
  function remember(main) {
    var active = document.activeElement;
    var place = null;
    if (active && active !== main && main.contains(active)) {
      var same = Array.prototype.filter.call(main.querySelectorAll(active.tagName),
        function (el) { return identity(el) === identity(active); });
      place = { identity: identity(active), tag: active.tagName, nth: same.indexOf(active) };
    }
    var open = Array.prototype.map.call(main.querySelectorAll("details[open][data-case]"),
      function (el) { return el.getAttribute("data-case"); });
    return { place: place, open: open };
  }
  function restore(main, kept) {
    Array.prototype.forEach.call(main.querySelectorAll("details[data-case]"), function (el) {
      if (kept.open.indexOf(el.getAttribute("data-case")) >= 0) { el.open = true; }
    });
    if (kept.place !== null) {
      var same = Array.prototype.filter.call(main.querySelectorAll(kept.place.tag),
        function (el) { return identity(el) === kept.place.identity; });
      var found = same[kept.place.nth];
      if (found) { found.focus({ preventScroll: true }); }
    }
  }
  // A page left open while the dashboard was stopped, or its store away, went on showing
  // the old queue as if it were current: a failed refresh now says since when it is not.
  var updated = new Date();
  function stale(why) {
    var line = document.getElementById("stale");
    if (!line) { return; }
    if (why === null) { line.hidden = true; line.textContent = ""; return; }
    line.textContent = "Not up to date: shown as it was at " + updated.toLocaleTimeString() +
      "; " + why + ". Trying again every " + period / 1000 + " s.";
    line.hidden = false;
  }
  // A navigation the page started (a form sent: Log out, Approve; a link) wins over a refresh.
  // A refresh fetched as a logout lands is redirected to the login with ?next=, and followed
  // it took the user there instead of where the logout meant (session 46): once the page is
  // leaving, the refresh in flight is dropped and none starts.
  // A page that started to leave may stay: a link answered with a download or "204 No
  // Content", a navigation stopped (Esc) end with nothing said to the page. Still here
  // STAY_MS after it started to leave, it refreshes again (review rv47-loose: it stopped for
  // good, showing an old queue as current). Longer than a logout takes; a navigation slower
  // than this risks only the ?next= of session 46.
  var STAY_MS = 10000;
  var leftAt = null;
  var inFlight = [];  // a slow answer does not hold the next refresh back: each is dropped
  function leave() {
    leftAt = Date.now();
    inFlight.splice(0).forEach(function (controller) { controller.abort(); });
  }
  function leaving() {
    if (leftAt !== null && Date.now() - leftAt >= STAY_MS) { leftAt = null; }
    return leftAt !== null;
  }
  // Said as a navigation starts: a form sent, a link followed (a form's "submit" event comes
  // first, but then a navigation is no more certain than here).
  window.addEventListener("beforeunload", leave);
  // Back to this page from the browser's cache: it is shown again, so it refreshes again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { leftAt = null; }
  });
  function refresh() {
    var main = document.getElementById("live");
    if (!main || leaving() || document.hidden || busy(main)) { return; }
    var controller = new AbortController();
    inFlight.push(controller);
    fetch(window.location.href, { headers: { "X-Live": "1" }, credentials: "same-origin",
                                  signal: controller.signal })
      .then(function (r) {
        if (leaving()) { return null; }
        // Sent elsewhere (the session ended: a restart, or a login from too long ago): go
        // there as a page, whose own refresh rule holds (the login page has none).
        if (r.redirected) { window.location.assign(r.url); return null; }
        if (r.ok && document.body.hasAttribute("data-reload-when-back")) {
          // The store-away page: the store answers again, so show the page asked for.
          window.location.reload();
          return null;
        }
        if (!r.ok) {
          stale(r.status === 503 ? "the job store cannot be read just now"
            : "the dashboard answered " + r.status);
          return null;
        }
        return r.text();
      })
      .then(function (html) {
        if (html !== null && !leaving() && !busy(main)) {
          var kept = remember(main);
          main.innerHTML = html;
          restore(main, kept);
          updated = new Date();
          stale(null);
          document.body.dataset.refreshedAt = String(Date.now());
        }
      })
      .catch(function () {
        if (leaving()) { return; }  // dropped (aborted) as the page leaves: nothing failed
        stale("the dashboard cannot be reached (stopped, restarting, or the network is down)");
      })
      .finally(function () {
        var at = inFlight.indexOf(controller);
        if (at >= 0) { inFlight.splice(at, 1); }
      });
  }
  window.setInterval(refresh, period);
})();
