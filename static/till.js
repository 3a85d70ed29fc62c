// The till, enhanced. Without this file every tap and scan is an ordinary form submit and the
// page comes back with the bill priced; with it the same requests go in the background and
// the returned form is swapped in place (no reload, the catalogue keeps its scroll, a scanner
// can keep scanning), the catalogue filters as the cashier types, and category chips filter
// without a request. Closing the bill stays an ordinary submit: it leads to the receipt.

// The receipt's printed page: 80 mm wide and as long as the receipt (a roll has no fixed page
// length, and Chromium does not accept `size: 80mm auto`).
(() => {
  const receipt = document.querySelector(".receipt[data-roll]");
  if (!receipt) return;
  const style = document.createElement("style");
  document.body.appendChild(style); // after till.css, so this rule wins
  const size = () => {
    const mm = Math.ceil(receipt.getBoundingClientRect().height * 25.4 / 96) + 2;
    style.textContent = `@page receipt { size: 80mm ${Math.max(mm, 40)}mm; margin: 0; }`;
  };
  size();
  window.addEventListener("beforeprint", size);
})();

(() => {
  const form = document.querySelector("form[data-till]");
  if (!form) return;
  let busy = false;
  const queue = []; // taps and scans made while a request is on its way: [[[name, value], scanText], ...]

  const $ = (selector) => form.querySelector(selector);
  const key = (text) => (text || "").toLowerCase().replace(/[^0-9a-z]/g, "");

  function currentCategory() {
    const pressed = form.querySelector(".cats [aria-pressed=true]");
    return pressed ? pressed.dataset.category : "";
  }

  // Show the tiles of the chosen category that match what is typed in the scan field
  // (SKU, name, or pinyin initials / full pinyin, as the server's search does).
  function filterTiles() {
    const scan = $("#f-scan");
    const typed = (scan ? scan.value : "").trim().toLowerCase();
    const typedKey = key(typed);
    const category = currentCategory();
    form.querySelectorAll(".tile").forEach((tile) => {
      const hay = tile.dataset.search || "";
      const matches = !typed || hay.includes(typed) || (typedKey && hay.includes(typedKey));
      tile.hidden = !(matches && (!category || tile.dataset.category === category));
    });
  }

  function chooseCategory(button) {
    form.querySelectorAll(".cats [aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    let hidden = form.querySelector("input[type=hidden][name=category]");
    if (!hidden) {
      hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = "category";
      form.appendChild(hidden);
    }
    hidden.value = button.value;
    filterTiles();
  }

  // The text boxes as a request sends them ({id: value}): what differs when its answer comes
  // back was typed meanwhile, and is kept (with the focus) in the form swapped in.
  function boxes() {
    const values = {};
    form.querySelectorAll("input[id]:not([type=hidden]):not([type=radio]):not([type=checkbox])")
      .forEach((input) => { values[input.id] = input.value; });
    return values;
  }

  function swapIn(html, pairs, scanned, sent) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fresh = doc.querySelector("form[data-till]");
    if (!fresh) return false;
    const now = boxes();
    const typedMeanwhile = Object.keys(now).filter((id) => id !== "f-scan" && sent && id in sent && now[id] !== sent[id]);
    const active = document.activeElement && typedMeanwhile.includes(document.activeElement.id)
      ? document.activeElement.id : "";
    const typed = $("#f-scan") ? $("#f-scan").value : "";
    const scrolls = [".tiles", ".bill-lines"].map((s) => ($(s) ? $(s).scrollTop : 0));
    form.innerHTML = fresh.innerHTML;
    [".tiles", ".bill-lines"].forEach((s, i) => { if ($(s)) $(s).scrollTop = scrolls[i]; });
    const scan = $("#f-scan");
    if (scan && typed) scan.value = typed; // what a scanner typed while the request was away
    typedMeanwhile.forEach((id) => {
      const box = form.querySelector(`#${CSS.escape(id)}`);
      if (box) box.value = now[id];
    });
    filterTiles();
    // The line just added or changed comes into view in the list of lines.
    const [name, value] = pairs[0] || [];
    const row = ["add", "inc", "dec"].includes(name)
      ? form.querySelector(`.lines tr[data-sku="${CSS.escape(value)}"]`)
      : (scanned ? form.querySelector(".lines tbody tr:last-child") : null);
    if (row) row.scrollIntoView({ block: "nearest" });
    const target = (typed && scan) || (active && form.querySelector(`#${CSS.escape(active)}`))
      || form.querySelector("[aria-invalid=true]") || form.querySelector("[autofocus]");
    if (target) target.focus({ preventScroll: Boolean(row) });
    return true;
  }

  // One request: the form as it is now, the scan text taken when Enter was pressed (a scanner
  // may already be typing the next code into the field), and what was tapped.
  function send(pair, scanText) {
    busy = true;
    form.setAttribute("aria-busy", "true");
    const data = new FormData(form);
    const sent = boxes();
    data.delete("action");
    data.set("scan", scanText);
    data.append(pair[0], pair[1]);
    fetch(window.location.pathname, { method: "POST", body: data, credentials: "same-origin",
                                      headers: { "Accept": "text/html" } })
      .then((response) => response.text().then((html) => ({ response, html })))
      .then(({ response, html }) => {
        if (response.redirected || !swapIn(html, [pair], Boolean(scanText.trim()), sent)) {
          window.location.assign(response.url);
        }
      })
      .catch(() => { // the background request failed: send the form the ordinary way instead
        const scan = $("#f-scan");
        if (scan) scan.value = scanText;
        const carry = document.createElement("input");
        carry.type = "hidden"; carry.name = pair[0]; carry.value = pair[1];
        form.appendChild(carry);
        form.submit();
      })
      .finally(() => {
        busy = false;
        form.removeAttribute("aria-busy");
        if (queue.length) send(...queue.shift());
      });
  }

  // Capture phase: before app.js's one-submission guard, which is for full page submits.
  document.addEventListener("submit", (event) => {
    if (event.target !== form) return;
    const button = event.submitter;
    if (button && button.name === "action" && button.value === "close") return; // to the receipt, as usual
    event.preventDefault();
    event.stopImmediatePropagation();
    if (button && button.name === "category") { chooseCategory(button); return; }
    const pair = button && button.name ? [button.name, button.value] : ["action", "quote"];
    const scan = $("#f-scan");
    const scanText = scan ? scan.value : "";
    if (scan) scan.value = ""; // taken: the next code starts in an empty field
    if (busy) { queue.push([pair, scanText]); return; }
    send(pair, scanText);
  }, true);

  form.addEventListener("input", (event) => {
    if (event.target.id === "f-scan") filterTiles();
  });
  // A quantity typed by hand: price again once the cashier leaves the box.
  form.addEventListener("change", (event) => {
    if (event.target.matches("input.qty") && !busy) send(["action", "quote"], "");
  });
  // A split part left empty fills with what is still due when the cashier enters it.
  form.addEventListener("focusin", (event) => {
    const input = event.target;
    if (!input.matches("input[data-split]") || input.value) return;
    const due = Number((form.querySelector("[data-due]") || {}).dataset?.due || NaN);
    if (Number.isNaN(due)) return;
    let rest = due;
    form.querySelectorAll("input[data-split]").forEach((other) => { rest -= Number(other.value) || 0; });
    if (rest > 0) {
      input.value = rest.toFixed(2);
      input.select();  // typing another amount replaces the suggestion instead of appending to it
    }
  });
  filterTiles();
  // The browser applies `autofocus` only at its next rendering step, which can come after the
  // page has loaded: a scanner firing straight away would type into nothing and the first code
  // (or its first characters) would be lost. Focus it now, while the page is still loading.
  const first = form.querySelector("[autofocus]");
  if (first && (!document.activeElement || document.activeElement === document.body)) first.focus();
})();
