/*
 * "Была ли статья полезной?" under every article (overrides/partials/kb-feedback.html).
 *
 * The pages are prebuilt and the same for every reader of an edition, so the votes go to the
 * gate with fetch: POST /api/feedback, form-encoded (page, vote, reason, comment), same origin,
 * no CSRF token (the gate checks Origin). "Нет" is stored at once; the form that follows asks
 * why, stores the reason and comment (the last vote counts), then offers a support request
 * prefilled with the article and the comment. No inline script, no third party, no cookie of
 * its own (the gate may set one for an anonymous vote).
 */
(function () {
  "use strict";
  var box = document.querySelector("[data-kb-feedback]");
  if (!box || !window.fetch || !window.URLSearchParams)
    return;
  var page = box.getAttribute("data-page");
  var buttons = box.querySelectorAll("[data-vote]");
  var why = box.querySelector(".kb-feedback__why");
  var status = box.querySelector(".kb-feedback__status");
  var support = box.querySelector(".kb-feedback__support");
  var FAILED = "Не удалось отправить отзыв. Попробуйте ещё раз позже.";

  function send(fields) {
    var body = new URLSearchParams();
    body.set("page", page);
    Object.keys(fields).forEach(function (k) {
      if (fields[k])
        body.set(k, fields[k]);
    });
    return fetch("/api/feedback", {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"Accept": "application/json"}
    }).then(function (r) {
      if (r.status === 204)
        return null;
      return r.json().then(function (d) { return d && d.error || FAILED; },
                           function () { return FAILED; });
    }, function () { return FAILED; });
  }

  function press(vote) {
    Array.prototype.forEach.call(buttons, function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-vote") === vote));
    });
  }

  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener("click", function () {
      var vote = button.getAttribute("data-vote");
      press(vote);
      support.hidden = true;
      send({vote: vote}).then(function (error) {
        if (error) {
          status.textContent = error;
          return;
        }
        if (vote === "yes") {
          why.hidden = true;
          status.textContent = "Спасибо! Рады, что статья помогла.";
        } else {
          why.hidden = false;
          status.textContent = "Спасибо. Расскажите, что не так: это поможет исправить статью.";
          var first = why.querySelector("input[type=radio]:checked") || why.querySelector("input");
          if (first)
            first.focus();
        }
      });
    });
  });

  why.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var reason = why.querySelector("input[name=reason]:checked");
    var comment = why.querySelector("textarea[name=comment]").value;
    send({vote: "no", reason: reason ? reason.value : "", comment: comment}).then(function (error) {
      if (error) {
        status.textContent = error;
        return;
      }
      why.hidden = true;
      support.hidden = false;
      status.textContent = "Спасибо, отзыв отправлен. Если нужен ответ, создайте обращение в поддержку.";
      support.querySelector("a").focus();
    });
  });

  box.hidden = false;
})();
