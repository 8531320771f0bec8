/*
 * Points Material's search box at the gate's worker (workers/kb-search.js), which answers from
 * GET /api/search, the visitor's own edition; where no gate runs, that worker hands over to
 * Material's own. Loaded from overrides/main.html before Material's bundle reads __config; the
 * worker's address comes in this script tag's data-worker attribute (relative to the page).
 */
(function () {
  "use strict";
  var el = document.getElementById("__config");
  var script = document.currentScript;
  try {
    var config = JSON.parse(el.textContent);
    if (config.search && script && script.dataset.worker) {
      var worker = new URL(script.dataset.worker, location.href);
      worker.searchParams.set("material", new URL(config.search, location.href).href);
      config.search = worker.href;
      el.textContent = JSON.stringify(config);
    }
  } catch (err) { /* Material's own search stays */ }
})();
