/* The merchant admin's page script: sections are HTML fragments rendered by the server;
 * this swaps them in, submits forms with fetch (so the Shopify session token App Bridge
 * adds to fetch calls, or the CSRF token, goes with them), and runs live previews.
 *
 * Markup it understands:
 *   a[data-view=name][data-query]   load /admin/view/name?query into #view
 *   form[data-admin]                submit with fetch; GET forms load their view with the
 *                                   fields as the query; POST answers replace data-target
 *                                   (default #view); a submit button's formaction wins
 *   form[data-live-action]          on input, POST the form there, answer into data-live-target
 *   [data-confirm]                  ask before submitting
 *   a[data-download]                fetch, then save (the session token cannot ride a link)
 *   [data-color]                    its colour becomes --preview-color (the CSP allows no
 *                                   inline style attribute; the CSSOM is fine)
 *   [data-rows] button[data-move]   move the button's row up or down (the ladder's order)
 */
(function () {
  "use strict";
  var view = document.getElementById("view");
  var status = document.getElementById("status");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function say(text) {
    if (!status) return;
    status.textContent = text;
    status.hidden = !text;
  }

  function swap(target, html) {
    target.innerHTML = html;
    if (target === view) view.focus({ preventScroll: false });
    document.dispatchEvent(new CustomEvent("admin:swapped", { detail: { target: target } }));
  }

  function request(url, options) {
    options = options || {};
    options.headers = options.headers || {};
    options.headers["X-Requested-With"] = "fetch";
    if (csrf) options.headers["X-CSRF-Token"] = csrf;
    options.credentials = "same-origin";
    return fetch(url, options);
  }

  function answer(response, target) {
    var next = response.headers.get("X-Admin-View");
    return response.text().then(function (html) {
      if (next) return loadView(next.split("?")[0], next.split("?")[1] || "", true);
      if (!response.ok && !html) throw new Error(response.status + " " + response.statusText);
      swap(target, html);
      say(response.ok ? "" : "");
    });
  }

  function markNav(name) {
    var links = document.querySelectorAll("nav.sections a[data-view]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("data-view") === name) links[i].setAttribute("aria-current", "page");
      else links[i].removeAttribute("aria-current");
    }
  }

  function loadView(name, query, push) {
    say(document.documentElement.lang === "ja" ? "読み込み中…" : "Loading…");
    var url = "/admin/view/" + encodeURIComponent(name) + (query ? "?" + query : "");
    return request(url).then(function (response) {
      return answer(response, view).then(function () {
        markNav(name);
        document.body.setAttribute("data-view", name);
        if (push) history.pushState({ view: name, query: query }, "",
          "/admin?view=" + encodeURIComponent(name) + (query ? "&" + query : ""));
        say("");
      });
    }).catch(function (error) { say(String(error.message || error)); });
  }

  function formQuery(form, submitter) {
    var data = new FormData(form, submitter || undefined);
    var params = new URLSearchParams();
    data.forEach(function (value, key) {
      if (key !== "csrf_token" && typeof value === "string" && value !== "") params.append(key, value);
    });
    return params.toString();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-view], a[data-download]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
    event.preventDefault();
    if (link.hasAttribute("data-download")) {
      say("…");
      request(link.getAttribute("href")).then(function (response) {
        if (!response.ok) throw new Error(response.status + " " + response.statusText);
        return response.blob();
      }).then(function (blob) {
        var url = URL.createObjectURL(blob);
        var save = document.createElement("a");
        save.href = url;
        save.download = link.getAttribute("data-download") || "export.csv";
        document.body.appendChild(save);
        save.click();
        save.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
        say("");
      }).catch(function (error) { say(String(error.message || error)); });
      return;
    }
    loadView(link.getAttribute("data-view"), link.getAttribute("data-query") || "", true);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-admin")) return;
    var submitter = event.submitter || null;
    var ask = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    event.preventDefault();
    if (ask && !window.confirm(ask)) return;
    var method = (form.getAttribute("method") || "get").toLowerCase();
    if (method === "get") {
      loadView(form.getAttribute("data-view") || document.body.getAttribute("data-view"),
        formQuery(form, submitter), true);
      return;
    }
    var action = (submitter && submitter.hasAttribute("formaction")) ? submitter.getAttribute("formaction")
      : form.getAttribute("action");
    var target = document.querySelector((submitter && submitter.getAttribute("data-target"))
      || form.getAttribute("data-target") || "#view") || view;
    // Read the fields first: a disabled button (the submitter too) is left out of FormData.
    var body = new FormData(form, submitter || undefined);
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    request(action, { method: "POST", body: body })
      .then(function (response) { return answer(response, target); })
      .catch(function (error) { say(String(error.message || error)); })
      .then(function () { for (var j = 0; j < buttons.length; j++) buttons[j].disabled = false; });
  });

  function paint(root) {
    var painted = (root || document).querySelectorAll("[data-color]");
    for (var i = 0; i < painted.length; i++) {
      painted[i].style.setProperty("--preview-color", painted[i].getAttribute("data-color"));
    }
  }
  paint(document);
  document.addEventListener("admin:swapped", function (event) { paint(event.detail.target); });

  document.addEventListener("click", function (event) {
    var mover = event.target.closest && event.target.closest("[data-rows] button[data-move]");
    if (!mover) return;
    var row = mover.closest("tr");
    var up = mover.getAttribute("data-move") === "up";
    var other = up ? row.previousElementSibling : row.nextElementSibling;
    if (!other) return;
    row.parentNode.insertBefore(up ? row : other, up ? other : row);
    mover.focus();
  });

  var timers = new WeakMap();
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (!form || !form.hasAttribute("data-live-action")) return;
    clearTimeout(timers.get(form));
    timers.set(form, setTimeout(function () {
      var target = document.querySelector(form.getAttribute("data-live-target"));
      if (!target) return;
      request(form.getAttribute("data-live-action"), { method: "POST", body: new FormData(form) })
        .then(function (response) { return answer(response, target); })
        .catch(function (error) { say(String(error.message || error)); });
    }, 300));
  });

  window.addEventListener("popstate", function (event) {
    var state = event.state || {};
    loadView(state.view || "dashboard", state.query || "", false);
  });
  history.replaceState({ view: document.body.getAttribute("data-view"),
    query: location.search.replace(/^\?/, "").split("&").filter(function (part) {
      return part.indexOf("view=") !== 0 && part.indexOf("lang=") !== 0 &&
        ["id_token", "hmac", "host", "shop", "embedded", "session", "timestamp", "locale"]
          .indexOf(part.split("=")[0]) < 0;
    }).join("&") }, "");
})();
