// Import progress: while a job runs, poll its figures and move its progress bar (the pages'
// Content-Security-Policy allows scripts from our own files only, so this is not inline).
// Without JavaScript the page still shows where the job was when it was loaded.
document.addEventListener("DOMContentLoaded", () => {
  const EVERY_MS = 1500;
  document.querySelectorAll("[data-progress-url]").forEach((box) => {
    const bar = box.querySelector("progress");
    const status = box.querySelector("[data-progress-status]");
    const summary = box.querySelector("[data-progress-summary]");
    const poll = async () => {
      let job;
      try {
        const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" },
                                                               credentials: "same-origin" });
        if (!response.ok || !response.headers.get("Content-Type").includes("json")) return;  // e.g. logged out
        job = await response.json();
      } catch (error) {
        window.setTimeout(poll, EVERY_MS * 4);  // the network blinked: try again a little later
        return;
      }
      bar.max = job.max;
      bar.value = job.value;
      bar.textContent = `${Math.floor((100 * job.value) / job.max)} %`;
      status.textContent = job.status_label;
      summary.textContent = job.summary;
      if (job.status === "queued" || job.status === "running") {
        window.setTimeout(poll, EVERY_MS);
      } else if ("reloadWhenFinished" in box.dataset) {
        window.location.reload();  // the finished page lists the problems, if any
      }
    };
    window.setTimeout(poll, EVERY_MS);
  });
});
