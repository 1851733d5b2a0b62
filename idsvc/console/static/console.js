// The staff screen: the site plan (Leaflet, CRS.Simple over the plan image, doors at 0-1 fractions)
// and the live stream (/console/events, server-sent events). No inline scripts: the CSP forbids them.
(function () {
  "use strict";
  var mapEl = document.getElementById("map");
  if (!mapEl) { return; }
  var markers = {};
  var colours = { locked: "#2e9e5b", open: "#e0a100", offline: "#8a959e", alarm: "#e46c0a", forced: "#c62828" };
  // Canvas, not one SVG element per door: a site of 2,000 doors draws in a fraction of the time (bench/console.py).
  var map = L.map(mapEl, { crs: L.CRS.Simple, minZoom: -2, maxZoom: 3, zoomSnap: 0.25, attributionControl: false, preferCanvas: true });

  var states = {};
  function colour(doorId, state) {
    var marker = markers[doorId];
    if (marker) { marker.setStyle({ color: colours[state], fillColor: colours[state] }); }
  }
  function paint(door) {
    states[door.id] = door.state;
    colour(door.id, door.state);
  }
  function opened(doorId) {  // a door a device reports open shows open for a few seconds, then its state again
    colour(doorId, "open");
    setTimeout(function () { colour(doorId, states[doorId]); }, 5000);
  }

  fetch(mapEl.dataset.doors, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (plan) {
    var bounds = [[0, 0], [plan.height, plan.width]];
    L.imageOverlay(mapEl.dataset.plan, bounds).addTo(map);
    map.fitBounds(bounds);
    plan.doors.forEach(function (door) {
      // Leaflet's CRS.Simple has y upwards; the plan's fractions have y downwards like the image.
      var marker = L.circleMarker([plan.height * (1 - door.y), plan.width * door.x], {
        radius: 7, weight: 2, color: colours[door.state], fillColor: colours[door.state], fillOpacity: 0.85
      }).addTo(map);
      marker.bindTooltip(document.createTextNode(door.name));  // text, never HTML: names are typed by people
      marker.on("click", function () { window.location.href = "/console/doors/" + door.id; });
      markers[door.id] = marker;
      states[door.id] = door.state;
    });
    var drawn = 0;
    map.eachLayer(function (layer) { if (layer instanceof L.CircleMarker) { drawn += 1; } });
    mapEl.dataset.markers = String(drawn);
    mapEl.dataset.ready = "1";
  });

  var stream = document.getElementById("stream");
  var live = document.getElementById("live");
  function bump(name) {
    var el = document.querySelector('[data-counter="' + name + '"]');
    if (!el) { return; }
    var value = parseInt(el.dataset.raw, 10) + 1;
    el.dataset.raw = String(value);
    el.textContent = value.toLocaleString(document.documentElement.lang);
  }
  function flash(doorId) {
    var marker = markers[doorId];
    if (!marker) { return; }
    marker.setRadius(12);
    setTimeout(function () { marker.setRadius(7); }, 1500);
  }
  function line(item) {
    var li = document.createElement("li");
    li.className = item.outcome + " fresh";
    li.dataset.door = item.door_id;
    li.dataset.seq = item.seq;
    var time = document.createElement("time");
    time.textContent = item.at_local;
    var door = document.createElement("span");
    door.className = "door";
    door.textContent = item.door_name;
    var what = document.createElement("span");
    what.textContent = item.outcome === "device" ? item.kind_text : (stream.dataset[item.outcome] + " " + item.reasons_text);
    li.appendChild(time); li.appendChild(door); li.appendChild(what);
    stream.insertBefore(li, stream.firstChild);
    while (stream.children.length > 200) { stream.removeChild(stream.lastChild); }
  }

  // after: the newest event this page shows, so events between the page and the stream are not lost.
  var source = new EventSource("/console/events?site_id=" + encodeURIComponent(mapEl.dataset.site) + "&after=" + encodeURIComponent(stream.dataset.after));
  source.addEventListener("ready", function () { live.classList.add("on"); live.textContent = live.dataset.on; });
  source.addEventListener("error", function () { live.classList.remove("on"); live.textContent = live.dataset.off; });
  source.addEventListener("door", function (message) {
    var item = JSON.parse(message.data);
    line(item);
    flash(item.door_id);
    if (item.kind === "device.door_opened") { opened(item.door_id); }
    if (item.outcome === "allow") { bump("entries_today"); }
    if (item.outcome === "deny") { bump("denials_today"); }
  });
  source.addEventListener("doorstate", function (message) { paint(JSON.parse(message.data)); });
  source.addEventListener("alarm", function () {
    // The alarm list is server-rendered with its forms: fetch the fresh table rather than rebuild it here.
    fetch("/console/alarms/table?site_id=" + encodeURIComponent(mapEl.dataset.site) + "&next=" + encodeURIComponent(location.pathname + location.search),
      { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
      var table = document.getElementById("alarm-table");
      if (table) { table.outerHTML = html; }
    });
  });
}());
