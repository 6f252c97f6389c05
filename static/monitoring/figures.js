// Monitoring pages: draw every server-built plotly figure found in the #monitoring-figures JSON.
(function () {
  "use strict";

  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function init() {
    const source = document.getElementById("monitoring-figures");
    const figures = source ? JSON.parse(source.textContent) : {};
    Object.keys(figures).forEach(function (name) {
      const el = document.querySelector('[data-figure="' + name + '"]');
      if (!el || !figures[name]) return;
      window.Plotly.newPlot(el, figures[name].data, figures[name].layout, CONFIG);
      const points = figures[name].data.reduce(function (n, trace) {
        return n + (trace.y ? trace.y.length : trace.z ? trace.z.length : trace.values ? trace.values.length : 0);
      }, 0);
      el.dataset.points = String(points);
      el.dataset.rendered = "1";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
