// Model version page: draws the server-built plotly figures and, while the version is queued or
// training, polls the progress endpoint so the loss and eval curves grow live. When training ends
// the page reloads once to show the final metrics (the server renders them; the JS only draws).
(function () {
  "use strict";

  const POLL_MS = 1500;
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function draw(name, figure) {
    const el = document.querySelector('[data-figure="' + name + '"]');
    if (!el || !figure) return;
    // react() updates in place when the div already holds a plot, so polling does not flicker.
    window.Plotly.react(el, figure.data, figure.layout, CONFIG);
    const first = figure.data[0];
    el.dataset.points = first && first.x ? String(first.x.length) : "0";
  }

  function describe(point) {
    if (!point) return "";
    const parts = ["Step " + point.step];
    if (point.epoch != null) parts.push("epoch " + Number(point.epoch).toFixed(2));
    if (point.loss != null) parts.push("loss " + Number(point.loss).toFixed(4));
    if (point.eval && point.eval.macro_f1 != null) parts.push("eval macro-F1 " + Number(point.eval.macro_f1).toFixed(3));
    return parts.join(" · ");
  }

  function poll(root) {
    const url = root.dataset.progressUrl;
    const step = document.getElementById("live-step");
    const status = document.getElementById("version-status");
    let failures = 0;

    async function tick() {
      let state;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        state = await response.json();
        failures = 0;
      } catch (err) {
        // A restarting server or a dropped connection: back off, keep trying for a while.
        failures += 1;
        if (failures < 20) window.setTimeout(tick, POLL_MS * Math.min(failures + 1, 5));
        return;
      }
      draw("loss", state.figures.loss);
      draw("eval", state.figures.eval);
      if (state.history.length) {
        document.querySelectorAll(".chart-empty").forEach((el) => el.remove());
        if (step) step.textContent = describe(state.history[state.history.length - 1]);
      }
      if (status && status.dataset.status !== state.status) {
        status.dataset.status = state.status;
        status.textContent = state.status_display;
        status.className = "badge badge-" + state.status;
      }
      if (state.live) {
        window.setTimeout(tick, POLL_MS);
      } else {
        root.dataset.live = "0";
        window.location.reload();
      }
    }

    window.setTimeout(tick, POLL_MS);
  }

  function init() {
    const source = document.getElementById("version-figures");
    const figures = source ? JSON.parse(source.textContent) : {};
    Object.keys(figures).forEach((name) => draw(name, figures[name]));
    const root = document.getElementById("version-page");
    if (root && root.dataset.live === "1") poll(root);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
