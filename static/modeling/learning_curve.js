// Learning-curve page: draws the server-built plotly figures (learning curve, kappa on the stop set).
(function () {
  "use strict";

  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function init() {
    const source = document.getElementById("learning-curve-figures");
    const figures = source ? JSON.parse(source.textContent) : {};
    Object.keys(figures).forEach(function (name) {
      const el = document.querySelector('[data-figure="' + name + '"]');
      if (!el) return;
      window.Plotly.newPlot(el, figures[name].data, figures[name].layout, CONFIG);
      const first = figures[name].data[0];
      el.dataset.points = first && first.y ? String(first.y.length) : "0";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
