// Draws the dashboard's charts with plotly.js (served by the app from the plotly package).
(function () {
  var d = JSON.parse(document.getElementById("dashboard-data").textContent);
  var rate = function (ok, n) { return n ? ok / n : null; };
  var days = d.trend.map(function (r) { return r.day; });
  Plotly.newPlot("trend-chart", [
    { x: days, y: d.trend.map(function (r) { return rate(r.ok_30d, r.resolved_30d); }),
      name: "rolling 30 days", mode: "lines", line: { width: 3 } },
    { x: days, y: d.trend.map(function (r) { return rate(r.ok_day, r.resolved_day); }),
      name: "per day", mode: "markers", marker: { size: 4 } }
  ], { title: { text: "On-time rate" }, yaxis: { tickformat: ".0%", range: [0, 1.05] },
       margin: { t: 40, r: 10, b: 40, l: 50 } }, { displaylogo: false, responsive: true });
  // Fixed order and colours (the embedded JSON has its keys sorted).
  var colours = { within_deadline: "#2e7d32", overdue: "#c62828",
                  awaiting_supplement: "#f9a825", resolved_not_returned: "#1565c0" };
  var states = Object.keys(colours);
  Plotly.newPlot("state-chart", [
    { type: "bar", x: states.map(function (s) { return s.replace(/_/g, " "); }),
      y: states.map(function (s) { return d.open_by_state[s] || 0; }),
      marker: { color: states.map(function (s) { return colours[s]; }) } }
  ], { title: { text: "Open dossiers by deadline state" }, margin: { t: 40, r: 10, b: 60, l: 50 } },
     { displaylogo: false, responsive: true });
})();
