// The member's account page: swap in the card code of each new 30-second step without
// reloading the page (which would lose the reader's place). Without JS a <noscript> refresh does it.
(function () {
  "use strict";
  var box = document.querySelector(".phone-qr[data-src]");
  if (!box) return;
  function fetchCode() {
    fetch(box.dataset.src, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        var next = parseInt(response.headers.get("X-Refresh-In"), 10) || 30;
        return response.text().then(function (svg) {
          box.innerHTML = svg;
          setTimeout(fetchCode, next * 1000);
        });
      })
      .catch(function () { location.reload(); });  // link revoked or card stopped: the page says so
  }
  setTimeout(fetchCode, (parseInt(box.dataset.refresh, 10) || 30) * 1000);
})();
