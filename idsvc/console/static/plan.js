// The plan editor: the plan with its doors; a click puts the chosen door's place (fractions 0-1 of the
// plan, y downwards) into the form, which the admin then saves.
(function () {
  "use strict";
  var el = document.getElementById("plan-editor");
  if (!el) { return; }
  var form = document.getElementById("place-form");
  var map = L.map(el, { crs: L.CRS.Simple, minZoom: -3, maxZoom: 3, zoomSnap: 0.25, attributionControl: false, preferCanvas: true });
  var pending = null;
  fetch(el.dataset.doors, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (plan) {
    var bounds = [[0, 0], [plan.height, plan.width]];
    L.imageOverlay(el.dataset.plan, bounds).addTo(map);
    map.fitBounds(bounds);
    plan.doors.forEach(function (door) {
      L.circleMarker([plan.height * (1 - door.y), plan.width * door.x], { radius: 6, color: "#1f6feb" }).bindTooltip(document.createTextNode(door.name)).addTo(map);
    });
    map.on("click", function (e) {
      var x = Math.min(1, Math.max(0, e.latlng.lng / plan.width));
      var y = Math.min(1, Math.max(0, 1 - e.latlng.lat / plan.height));
      form.elements.x.value = x.toFixed(4);
      form.elements.y.value = y.toFixed(4);
      if (pending) { map.removeLayer(pending); }
      pending = L.circleMarker(e.latlng, { radius: 8, color: "#c62828" }).addTo(map);
    });
    el.dataset.ready = "1";
  });
}());
