/*
 * The support request form (gate/templates/support_form.html): the out-of-SLA hint follows the
 * chosen category, and up to three articles of the reader's own edition that may already answer
 * the question are suggested while the description is typed. A file of every edition, because
 * the Content-Security-Policy allows no inline script.
 */
(function () {
  "use strict";
  var category = document.getElementById("category"), note = document.getElementById("out-of-sla");
  category.addEventListener("change", function () {
    var opt = category.options[category.selectedIndex];
    note.hidden = !opt || opt.getAttribute("data-in-sla") !== "no";
  });
  // Up to three articles of the reader's own edition that may already answer the question.
  var box = document.getElementById("suggestions"), list = box.querySelector("ul");
  var text = document.getElementById("description"), docs = null, timer = null;
  function words(s) {
    return (s.toLowerCase().replace(/ё/g, "е").match(/[a-zа-я0-9]{4,}/g) || []).map(function (w) { return w.slice(0, 5); });
  }
  function show(results) {
    list.innerHTML = "";
    results.forEach(function (r) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = r.location; a.textContent = r.title; li.appendChild(a); list.appendChild(li);
    });
    box.hidden = results.length === 0;
  }
  function suggest() {
    var q = words(text.value);
    if (q.length < 2) { show([]); return; }
    fetch("/api/search?q=" + encodeURIComponent(text.value.slice(0, 200)), {headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw r; return r.json(); })
      .then(function (data) { show((data.results || []).slice(0, 3)); })
      .catch(function () { localSearch(q); });
  }
  function localSearch(q) {
    var ready = docs ? Promise.resolve(docs) : fetch("/search/search_index.json").then(function (r) { return r.json(); })
      .then(function (idx) { docs = idx.docs.filter(function (d) { return d.location.indexOf("#") < 0; }); return docs; });
    ready.then(function (all) {
      var scored = all.map(function (d) {
        var t = words(d.title).join(" "), b = words(d.text).join(" "), s = 0;
        q.forEach(function (w) { if (t.indexOf(w) >= 0) s += 3; if (b.indexOf(w) >= 0) s += 1; });
        return {title: d.title.replace(/<[^>]*>/g, ""), location: "/" + d.location, score: s};
      }).filter(function (d) { return d.score >= 3; });
      scored.sort(function (a, b) { return b.score - a.score; });
      show(scored.slice(0, 3));
    }).catch(function () { show([]); });
  }
  text.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(suggest, 400); });
})();
