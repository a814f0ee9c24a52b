// Draw every <canvas data-chart="{...}"> with Chart.js; the spec comes from the server as JSON
// (no inline scripts: the CSP forbids them). Spec: {type, labels, datasets: [{label, data, color|colors}], horizontal,
// integer (whole-number value ticks, for counts), max (the value axis's end, e.g. 100 for percentages)}.
(function () {
  function draw(canvas) {
    if (canvas.dataset.chartDrawn || typeof Chart === "undefined") { return; }
    var spec;
    try { spec = JSON.parse(canvas.dataset.chart); } catch (e) { return; }
    canvas.dataset.chartDrawn = "1";
    var datasets = (spec.datasets || []).map(function (d) {
      return {
        label: d.label, data: d.data, type: d.type || undefined,
        backgroundColor: d.colors || d.color || "#0b5cad",
        borderColor: d.borderColor || d.color || "#084682",
        borderWidth: d.type === "line" ? 2 : 0,
        pointRadius: d.type === "line" ? 4 : undefined,
        showLine: d.showLine !== undefined ? d.showLine : undefined
      };
    });
    // Counts (spec.integer) get whole-number ticks: a funnel of 1–3 leads must not show 0.5 steps.
    var valueTicks = spec.integer ? { precision: 0, stepSize: spec.stepSize || undefined } : {};
    var valueAxis = { beginAtZero: true, ticks: valueTicks };
    if (typeof spec.max === "number") { valueAxis.max = spec.max; }
    var categoryAxis = { beginAtZero: true };
    new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels || [], datasets: datasets },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { position: "bottom" } },
        scales: spec.type === "pie" || spec.type === "doughnut" ? {} :
          (spec.horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis })
      }
    });
  }
  function drawAll(root) { (root || document).querySelectorAll("canvas[data-chart]").forEach(draw); }
  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.detail.elt); });
})();
