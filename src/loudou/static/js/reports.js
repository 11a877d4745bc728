// Report charts: each [data-chart] element is followed by a JSON script with the chart's
// categories, series and drill-down links, built from the table shown beside it. A click
// on a bar or a funnel step opens the deal list behind it. No animation: a figure is shown
// as it is the moment the page opens.
(function () {
  "use strict";
  var PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#f97316"];

  function optionFor(spec) {
    var pct = spec.percent;
    var fmt = function (v) { return v === null || v === undefined ? "–" : (pct ? v + "%" : v.toLocaleString()); };
    var tooltip = { trigger: spec.kind === "funnel" ? "item" : "axis", valueFormatter: fmt, confine: true };
    var legend = spec.series.length > 1 ? { top: 0, type: "scroll" } : undefined;
    var top = spec.series.length > 1 ? 30 : 10;
    if (spec.kind === "funnel") {
      var s = spec.series[0];
      return {
        color: PALETTE, tooltip: tooltip, animation: false,
        series: [{
          type: "funnel", sort: "none", left: "5%", width: "90%", top: 10, bottom: 10, minSize: "32%", gap: 2,
          label: { show: true, position: "inside", formatter: function (p) { return p.name + "  " + fmt(p.value); } },
          data: spec.categories.map(function (c, i) { return { name: c, value: s.data[i] }; })
        }]
      };
    }
    var horizontal = spec.kind === "hbar";
    var categoryAxis = { type: "category", data: spec.categories, inverse: horizontal,
                         axisLabel: { interval: horizontal ? 0 : "auto", hideOverlap: true, width: 110, overflow: "truncate" } };
    var valueAxis = { type: "value", axisLabel: { formatter: pct ? "{value}%" : undefined } };
    var series = spec.series.map(function (s) {
      var item = { name: s.name, type: spec.kind === "line" ? "line" : "bar", data: s.data, connectNulls: true };
      if (spec.kind === "stacked") { item.stack = "all"; }
      if (spec.kind === "histogram") { item.barCategoryGap = "2%"; }
      return item;
    });
    return {
      color: PALETTE, tooltip: tooltip, legend: legend, animation: false,
      grid: { left: horizontal ? 120 : 50, right: 20, top: top, bottom: 30, containLabel: false },
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: series
    };
  }

  function draw(el) {
    var data = el.nextElementSibling;
    if (!data || !window.echarts) { return; }
    var spec = JSON.parse(data.textContent);
    if (spec.kind === "hbar") { el.style.height = Math.max(180, 26 * spec.categories.length + 40) + "px"; }
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption(optionFor(spec));
    chart.on("click", function (p) {
      var url = spec.drill[p.dataIndex];
      if (url) { window.location.href = url; }
    });
    el.style.cursor = "pointer";
    window.addEventListener("resize", function () { chart.resize(); });
    el.setAttribute("data-drawn", "1");
  }

  function start() { document.querySelectorAll("[data-chart]").forEach(draw); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
