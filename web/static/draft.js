// Liaison: refreshes a draft's legal verdict while the draft is being written (docs/ui.md,
// "Drafting"). The form works without this script: its "Check the verdict" button posts the
// same form and shows the same verdict. This only does that in the background when a field
// changes, and swaps the verdict in.
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  if (!form || !window.fetch || !window.DOMParser || !window.URLSearchParams) {
    return;
  }
  var timer = null;
  var latest = 0;
  function refresh() {
    var body = new URLSearchParams(new FormData(form));
    body.set("check", "1");
    var mine = ++latest;
    var shown = document.getElementById("draft-verdict");
    if (shown) {
      shown.setAttribute("aria-busy", "true");
    }
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        if (mine !== latest) {
          return; // a later change is on its way
        }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("draft-verdict");
        var now = document.getElementById("draft-verdict");
        if (fresh && now) {
          now.replaceWith(document.importNode(fresh, true));
        }
      })
      .catch(function () {
        var now = document.getElementById("draft-verdict");
        if (now) {
          now.removeAttribute("aria-busy");
        }
      });
  }
  form.addEventListener("change", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  });
})();
