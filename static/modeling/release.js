// Comparison page: draws the server-built plotly figures and, while the comparison job runs, waits for
// the htmx-polled job partial to report the end, then reloads once into the results (the server
// renders them; this file only draws and watches).
(function () {
  "use strict";

  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const FINISHED = ["succeeded", "failed", "cancelled"];

  function draw(name, figure) {
    const el = document.querySelector('[data-figure="' + name + '"]');
    if (!el || !figure) return;
    window.Plotly.react(el, figure.data, figure.layout, CONFIG);
    el.dataset.drawn = "1";
  }

  function watchJob() {
    const box = document.getElementById("comparison-job");
    if (!box) return;
    const timer = window.setInterval(function () {
      // htmx replaces the partial every second, so look it up afresh each time.
      const progress = box.querySelector(".job-progress");
      if (progress && FINISHED.indexOf(progress.dataset.status) !== -1) {
        window.clearInterval(timer);
        window.location.reload();
      }
    }, 300);
  }

  function init() {
    const source = document.getElementById("release-figures");
    const figures = source ? JSON.parse(source.textContent) : {};
    Object.keys(figures).forEach(function (name) { draw(name, figures[name]); });
    watchJob();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
