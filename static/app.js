// Small progressive enhancements for the staff UI; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // One tap, one submission: a double tap on a slow tablet must not register twice.
  document.querySelectorAll("form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      const question = form.dataset.confirm;
      if (question && !window.confirm(question)) { event.preventDefault(); return; }
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
  // After a failed submit, put the cursor in the first field that needs fixing.
  const invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) { invalid.focus(); invalid.scrollIntoView({ block: "center" }); }
  // A whole result row is a target, not just the name.
  document.querySelectorAll("tr[data-href]").forEach((row) => {
    row.addEventListener("click", (event) => {
      if (!event.target.closest("a, button, input, select")) window.location = row.dataset.href;
    });
  });
});
