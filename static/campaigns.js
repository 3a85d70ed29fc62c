// The campaign form: show only the settings of the chosen schedule (without JavaScript every
// schedule's settings stay visible under their own heading, and the server reads only the chosen one's).
document.addEventListener("DOMContentLoaded", () => {
  const schedule = document.getElementById("f-schedule");
  const groups = document.querySelectorAll("fieldset[data-schedules]");
  if (!schedule || !groups.length) return;
  const show = () => {
    groups.forEach((group) => {
      group.hidden = !group.dataset.schedules.split(" ").includes(schedule.value);
    });
  };
  schedule.addEventListener("change", show);
  show();
});
