// The statistics page's chart: arrivals and departures per day (uPlot). Days with 1 to 4 people are
// gaps, as the table shows them as "<5". No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  var el = document.getElementById("daily-chart");
  if (!el) { return; }
  function day(seconds) { return new Date(seconds * 1000).toISOString().slice(5, 10); }  // MM-DD, as the days are dates
  fetch(el.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (daily) {
    var xs = daily.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
    var options = {
      width: Math.max(320, el.clientWidth), height: 220,
      scales: { x: { time: true } },
      axes: [{ values: function (u, splits) { return splits.map(day); }, incrs: [86400, 7 * 86400, 28 * 86400], space: 50 }, {}],
      series: [
        { label: el.dataset.day, value: function (u, v) { return v == null ? "--" : day(v); } },
        { label: el.dataset.arrivals, stroke: "#1f6feb", width: 2, spanGaps: false },
        { label: el.dataset.departures, stroke: "#c62828", width: 2, spanGaps: false }
      ]
    };
    new uPlot(options, [xs, daily.arrivals, daily.departures], el);
    el.dataset.ready = "1";
  });
}());
