// Small progressive enhancements for the staff UI; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // One tap, one submission: a double tap on a slow tablet must not register twice.
  document.querySelectorAll("form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      const question = form.dataset.confirm;
      if (question && !window.confirm(question)) { event.preventDefault(); return; }
      // Forms whose server asks on a page of its own (for browsers without JS) are told the dialog was answered.
      if (question && form.dataset.confirmField && !form.querySelector(`input[name="${form.dataset.confirmField}"]`)) {
        const yes = document.createElement("input");
        yes.type = "hidden"; yes.name = form.dataset.confirmField; yes.value = "1";
        form.appendChild(yes);
      }
      if (form.dataset.submitted) { event.preventDefault(); return; }
      form.dataset.submitted = "1";
      if (form.method.toLowerCase() === "post") {
        // A disabled button's name=value is not sent, so carry the pressed one in a hidden input
        // (the till's "close" button depends on it).
        const pressed = event.submitter;
        if (pressed && pressed.name) {
          const carry = document.createElement("input");
          carry.type = "hidden"; carry.name = pressed.name; carry.value = pressed.value;
          form.appendChild(carry);
        }
        form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      }
    });
  });
  // A page brought back by the browser's Back button: its forms may be sent again (a resend
  // is answered by the form's one-time token, never done twice).
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-submitted]").forEach((form) => {
      delete form.dataset.submitted;
      form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    });
  });
  // Print buttons (no inline handlers: the pages' Content-Security-Policy allows scripts from files only).
  document.querySelectorAll("[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
  // After a failed submit, put the cursor in the first field that needs fixing.
  const invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) { invalid.focus(); invalid.scrollIntoView({ block: "center" }); }
  // A whole result row is a target, not just the name.
  document.querySelectorAll("tr[data-href]").forEach((row) => {
    row.addEventListener("click", (event) => {
      if (!event.target.closest("a, button, input, select")) window.location = row.dataset.href;
    });
  });
  // Audience forms: recount the matching members as the filters change (the Count button
  // does the same without JavaScript).
  document.querySelectorAll("form[data-live-count]").forEach((form) => {
    const out = document.getElementById("live-count");
    let timer = null;
    const recount = () => {
      const data = new FormData(form);
      data.set("op", "count");
      fetch(form.dataset.liveCount, { method: "POST", body: data, headers: { "Accept": "application/json" } })
        .then((r) => r.json())
        .then((body) => { out.textContent = body.text || body.error || ""; out.closest("[role=status]").hidden = false; })
        .catch(() => {});
    };
    form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(recount, 400); });
    form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(recount, 150); });
  });
});
