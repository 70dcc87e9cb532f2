// The zoomable picture of a large result: Leaflet over the run's tile pyramid
// (GET /api/v1/simulations/{id}/tiles/{z}/{x}/{y}.png). The plain picture under it stays
// until the first tiles are drawn, and is all there is without script.
(function () {
  "use strict";
  var TILE = 256;

  function start(box) {
    if (!window.L) return; // the library did not load: keep the plain picture
    var levels = Number(box.dataset.levels);
    var picture = box.parentElement.querySelector("img");
    // Level 0 is one tile: the world is TILE x TILE units of the simple CRS, y down.
    var world = L.latLngBounds([-TILE, 0], [0, TILE]);
    box.hidden = false;
    var map = L.map(box, {
      crs: L.CRS.Simple,
      minZoom: 0,
      maxZoom: levels + 2, // past the finest level, its tiles are magnified
      attributionControl: false,
      keyboardPanDelta: TILE / 2,
      maxBounds: world.pad(0.25),
    });
    var layer = L.tileLayer(box.dataset.url, {
      tileSize: TILE,
      minZoom: 0,
      maxNativeZoom: levels,
      maxZoom: levels + 2,
      noWrap: true,
      bounds: world, // no requests for tiles outside the pyramid
    });
    layer.once("load", function () {
      box.classList.add("ready");
      if (picture) picture.hidden = true;
    });
    map.fitBounds(world);
    layer.addTo(map);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-tile-map]").forEach(start);
  });
})();
