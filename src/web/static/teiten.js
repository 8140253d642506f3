// teiten dashboard: draws every <div class="chart" data-src="/api/v1/series?…"> with uPlot.
// Served by `teiten serve` itself (no CDN); no string from the data is ever parsed as HTML
// (uPlot writes labels with textContent; so does this file).
"use strict";

(function () {
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function fail(el, message) {
    el.dataset.state = "error";
    el.textContent = message;
  }

  async function draw(el) {
    const measure = el.dataset.measure === "sources" ? "sources" : "packets";
    let body;
    try {
      const res = await fetch(el.dataset.src, { credentials: "same-origin" });
      body = await res.json();
      if (!res.ok) {
        fail(el, (body.error && body.error.message) || ("HTTP " + res.status));
        return;
      }
    } catch (e) {
      fail(el, String(e));
      return;
    }
    const points = body.points || [];
    const names = body.series || [];
    // The x values are the points' labels — the store's local days and times — read as if
    // they were UTC and shown in UTC, so the axis says what the API says whatever the browser's
    // time zone.
    const xs = points.map((p) => Date.parse(p.label.replace(" ", "T").slice(0, 16) +
                                            (p.label.length > 10 ? ":00Z" : "T00:00:00Z")) / 1000);
    const daily = points.length > 1 && points.every((p) => p.label.length === 10);
    const data = [xs];
    const series = [{ value: (u, v) => (v == null ? "-" : new Date(v * 1000).toISOString()
      .slice(0, daily ? 10 : 16).replace("T", " ")) }];
    names.forEach((name, i) => {
      data.push(points.map((p) => (p[measure] ? p[measure][i] : null)));
      series.push({ label: String(name), stroke: palette[i % palette.length], width: 1.5,
                  value: (u, v) => (v == null ? "-" : v.toLocaleString("en-US")) });
    });
    const width = Math.max(320, el.clientWidth || 640);
    el.dataset.points = String(points.length);
    el.dataset.series = String(names.length);
    if (typeof uPlot === "undefined") {
      fail(el, "uPlot is not installed on the server (npm ci)");
      return;
    }
    // eslint-disable-next-line no-new
    const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
    const xAxis = daily
      ? { space: 70, incrs: [86400, 7 * 86400, 28 * 86400],
          values: (u, vals) => vals.map((v) => new Date(v * 1000).toISOString().slice(5, 10)) }
      : {};
    new uPlot({ width: width, height: 260, series: series, tzDate: utc,
                scales: { x: { time: true } }, axes: [xAxis, { size: 70 }] }, data, el);
    el.dataset.state = "drawn";
  }

  function init() {
    document.querySelectorAll(".chart[data-src]").forEach((el) => { draw(el); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
