/*
 * The search box's worker: Material's search box and result list, answered by the gate.
 *
 * Material runs its search in a web worker and talks to it with four messages (SETUP with the
 * edition's search_index.json, READY, QUERY with the typed text, RESULT with the items to
 * render). overrides/main.html points Material at this worker instead of its own, so the look,
 * the keyboard navigation, the result counter and the highlighting (?h=) stay Material's, while
 * the results come from GET /api/search: the gate decides per visitor which edition is searched.
 *
 * Where no gate runs (`mkdocs serve` while writing: /api/search is not JSON there), the first
 * query loads Material's own worker (its address is the `material` parameter) into this one and
 * hands it the index, so Material's client-side search works as before.
 */
(function () {
  "use strict";
  var SETUP = 0, READY = 1, QUERY = 2, RESULT = 3;
  var DEBOUNCE = 150;          // ms of quiet typing before asking the gate
  var MAX_QUERY = 200;         // characters the gate accepts
  var here = new URL(self.location.href);
  var material = here.searchParams.get("material");
  var api = new URL("/api/search", here).href;
  var post = self.postMessage.bind(self);

  var mode = null;             // null: not known yet; "gate"; "material"
  var setup = null;            // Material's SETUP message, kept for its own worker
  var latest = 0, value = "", timer = null;

  function empty() {
    return {type: RESULT, data: {items: []}};
  }

  function escapeHTML(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  /* The gate's answer as Material's result items: one article per item, its snippet as teaser.
     A result that points into an article (a heading) becomes Material's pair of the article
     (its title, as context) and the section (heading and snippet), as Material's own search
     shows a section it found. */
  function toMaterial(data) {
    var items = (data && data.results || []).map(function (r) {
      var terms = {};
      (r.matched || []).forEach(function (w) { terms[w] = true; });
      (r.missing || []).forEach(function (w) { terms[w] = false; });
      var score = typeof r.score === "number" ? r.score : 0;
      var doc = {
        location: r.location,
        title: r.title_html || escapeHTML(r.title || ""),
        text: r.snippet ? "<p>" + r.snippet + "</p>" : "",
        score: score,
        terms: terms
      };
      if (!r.page)
        return [doc];
      return [{
        location: r.page.location,
        title: r.page.title_html || escapeHTML(r.page.title || ""),
        text: "",
        score: score,
        terms: terms
      }, doc];
    });
    return {type: RESULT, data: {items: items}};
  }

  function ask(text, seq, attempt) {
    var url = api + "?q=" + encodeURIComponent(text.slice(0, MAX_QUERY));
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") !== 0)
          throw new Error("no gate here");
        mode = "gate";
        if (r.status === 429 && attempt < 3) {
          var wait = Math.min(10, parseInt(r.headers.get("Retry-After"), 10) || 1);
          setTimeout(function () { if (seq === latest) ask(value, seq, attempt + 1); }, wait * 1000);
          return null;
        }
        return r.json().then(function (data) {
          if (seq === latest)
            post(r.ok ? toMaterial(data) : empty());
        });
      })
      .catch(function () {
        if (mode === null)
          useMaterial();
        else if (seq === latest)
          post(empty());
      });
  }

  /* No gate: Material's own worker, loaded into this one, answers from here on. */
  function useMaterial() {
    mode = "material";
    if (!material || !setup) {
      post(empty());
      return;
    }
    var ready = false;
    self.postMessage = function (message) {
      if (message && message.type === READY && !ready) {
        ready = true;  // the page already had READY from us: ask for the current query instead
        self.dispatchEvent(new MessageEvent("message", {data: {type: QUERY, data: value}}));
        return;
      }
      post(message);
    };
    try {
      importScripts(material);
    } catch (err) {
      post(empty());
      return;
    }
    self.dispatchEvent(new MessageEvent("message", {data: setup}));
  }

  self.addEventListener("message", function (ev) {
    var message = ev.data || {};
    if (mode === "material") {  // Material's worker has its own listener now
      if (message.type === QUERY)
        value = String(message.data || "");
      return;
    }
    if (message.type === SETUP) {
      setup = message;
      post({type: READY});
    } else if (message.type === QUERY) {
      value = String(message.data || "");
      var seq = ++latest;
      clearTimeout(timer);
      if (!value.trim()) {
        post(empty());
        return;
      }
      timer = setTimeout(function () { ask(value, seq, 0); }, DEBOUNCE);
    }
  });
})();
