// Live parts without a build step: every few seconds the page's <main id="live"> is fetched
// again (the same URL with X-Live: 1 returns only that part) and swapped in. It waits while
// the user is typing in a form that asks for it (data-live-pause), so nothing typed is lost.
(function () {
  "use strict";
  var period = Number(document.body.dataset.refreshMs);
  // 0 marks a page with nothing live (the login page): refreshing it would only wipe the
  // name and password being typed into it.
  if (!(period > 0)) { return; }
  function busy(main) {
    var active = document.activeElement;
    return active && main.contains(active) && active.closest("[data-live-pause]") !== null;
  }
  function refresh() {
    var main = document.getElementById("live");
    if (!main || document.hidden || busy(main)) { return; }
    fetch(window.location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && !busy(main)) {
          main.innerHTML = html;
          document.body.dataset.refreshedAt = String(Date.now());
        }
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }
  window.setInterval(refresh, period);
})();
