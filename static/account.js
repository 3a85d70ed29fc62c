// The member's account page: swap in the card code of each new 30-second step without
// reloading the page (which would lose the reader's place). Without JS a <noscript> refresh does it.
(function () {
  "use strict";
  var box = document.querySelector(".phone-qr[data-src]");
  if (!box) return;
  var retry = 5;  // seconds; doubled after each failure, up to a minute
  function fetchCode() {
    fetch(box.dataset.src, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 404) {  // link cancelled or card stopped: the page itself says so
          location.reload();
          return;
        }
        if (!response.ok) throw new Error(String(response.status));  // busy (429) or a server hiccup
        var next = parseInt(response.headers.get("X-Refresh-In"), 10) || 30;
        return response.text().then(function (svg) {
          box.innerHTML = svg;
          retry = 5;
          setTimeout(fetchCode, next * 1000);
        });
      })
      .catch(function () {  // offline for a moment (a lift, a basement): keep the page, try again
        setTimeout(fetchCode, retry * 1000);
        retry = Math.min(retry * 2, 60);
      });
  }
  setTimeout(fetchCode, (parseInt(box.dataset.refresh, 10) || 30) * 1000);
})();
