/*
 * Loyalty widget loader: the only file a storefront loads up front.
 *
 * <script src="{APP_URL}/widget/loader.js" defer data-platform="shopify|woocommerce|demo"
 *   data-shop="…" data-customer-id="…" data-locale="ja" data-currency="JPY"
 *   data-api-base="/apps/loyalty/api" [data-identity='{…}'] [data-open]></script>
 *
 * Before the page is idle it makes at most one request: the balance of a signed-in member.
 * When idle it fetches the public program, draws the launcher in a shadow root and fills the
 * "points you'll earn" snippets. The panel (and its language catalog) loads on the first
 * interaction. The page may call LoyaltyWidget("open" | "close" | "refresh") at any time,
 * even before this file has run (calls queue on a stub).
 *
 * Safety: no innerHTML, no eval, no inline handlers or style attributes (strict CSP).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var previous = window.LoyaltyWidget;
  if (!script || (previous && previous.loaded)) return;

  // Replaced at build time: hashed asset names and the strings the loader itself needs.
  var MANIFEST = __MANIFEST__;
  var LANGS = Object.keys(MANIFEST.i18n);
  var data = script.dataset;
  var platform = data.platform || "shopify";
  var customer = (data.customerId || "").trim();
  var lang = pickLanguage(data.locale || document.documentElement.lang || navigator.language);
  var assetBase = new URL(".", script.src).href;
  var apiBase = (data.apiBase || "/apps/loyalty/api").replace(/\/$/, "");
  var identity = parse(data.identity);
  var signedIn = platform === "shopify" ? !!customer : !!(identity && identity.customer_id);

  var state = {program: null, me: null, programLoad: null, meLoad: null};
  var host, root, launcher, badge, panel, panelLoad, catalogLoad, queued = [];

  function parse(text) {
    try { return text ? JSON.parse(text) : null; } catch (error) { return null; }
  }

  function pickLanguage(locale) {
    var wanted = String(locale || "en").replace("_", "-").toLowerCase();
    var base = wanted.split("-")[0];
    // Traditional Chinese readers get English rather than the Simplified catalog.
    if (/^zh-(hant|tw|hk|mo)/.test(wanted)) return "en";
    var found = LANGS.filter(function (l) { return l.toLowerCase() === wanted; })[0] ||
      LANGS.filter(function (l) { return l.toLowerCase().split("-")[0] === base; })[0];
    return found || "en";
  }

  function text(key) {
    var own = MANIFEST.strings[lang] || {};
    return own[key] || MANIFEST.strings.en[key];
  }

  // The shopper's language catalog, fetched once: by the panel, or for the snippets.
  function loadCatalog() {
    // A failed download shows English this time and is tried again next time.
    catalogLoad = catalogLoad || fetch(assetBase + MANIFEST.i18n[lang])
      .then(function (r) { return r.json(); }).catch(function () {
        catalogLoad = null;
        return {};
      });
    return catalogLoad;
  }

  // --- Transport: App Proxy on Shopify, signed shopper token elsewhere ---------------------

  function tokenKey() { return "loyalty:" + data.shop + ":" + (identity && identity.customer_id); }

  function shopperToken() {
    try {
      var saved = JSON.parse(sessionStorage.getItem(tokenKey()) || "null");
      if (saved && saved.expires > Date.now() + 30000) return Promise.resolve(saved.token);
    } catch (error) { /* storage may be disabled; ask for a new token */ }
    return request("POST", "/session", identity, true).then(function (body) {
      state.sessionMe = body.me;
      try {
        sessionStorage.setItem(tokenKey(), JSON.stringify(
          {token: body.token, expires: Date.now() + body.expires_in * 1000}));
      } catch (error) { /* keep going without caching */ }
      return body.token;
    });
  }

  function request(method, path, body, anonymous, headers, again) {
    headers = headers || {};
    if (body) headers["Content-Type"] = "application/json";
    var url = apiBase + path;
    if (platform !== "shopify" && path === "/program") {
      url += "?store_id=" + encodeURIComponent(data.shop || "");
    }
    var auth = platform === "shopify" || anonymous ? Promise.resolve(null) : shopperToken();
    return auth.then(function (token) {
      if (token) headers.Authorization = "Bearer " + token;
      // A sign-in made for this very request answered with the shopper's view: a balance
      // read needs no second request. Used at once or dropped, so it never goes stale.
      var me = state.sessionMe;
      state.sessionMe = null;
      if (me && path === "/me") {
        return {ok: true, json: function () { return Promise.resolve(me); }};
      }
      return fetch(url, {
        method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
        credentials: platform === "shopify" ? "same-origin" : "omit"
      });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (response.status === 401 && !anonymous && platform !== "shopify") {
          try { sessionStorage.removeItem(tokenKey()); } catch (error) { /* nothing cached */ }
          // A token that aged or a rotated server key: sign in once more, then give up.
          if (!again) return request(method, path, body, anonymous, headers, true);
        }
        if (!response.ok) {
          var failure = new Error(json.message || "HTTP " + response.status);
          failure.status = response.status;
          failure.body = json;
          throw failure;
        }
        return json;
      });
    });
  }

  // One request at a time per document; a failed one is forgotten so the next call retries.
  function load(key, path, anonymous, done) {
    var pending = request("GET", path, null, anonymous).then(done, function (error) {
      if (state[key] === pending) state[key] = null;
      throw error;
    });
    state[key] = pending;
    return pending;
  }

  function loadProgram(force) {
    if (force || !state.programLoad) {
      load("programLoad", "/program", true, function (program) {
        state.program = program;
        return program;
      });
    }
    return state.programLoad;
  }

  function loadMe(force) {
    if (!signedIn) return Promise.resolve(null);
    if (force || !state.meLoad) {
      load("meLoad", "/me", false, function (me) {
        state.me = me;
        showBalance();
        renderSnippets();
        return me;
      });
    }
    return state.meLoad;
  }

  // --- Launcher ------------------------------------------------------------------------------

  var LAUNCHER_CSS =
    ":host{all:initial}" +
    ".launcher{position:fixed;bottom:20px;z-index:2147483000;display:flex;align-items:center;" +
    "gap:8px;min-height:48px;padding:0 18px;border:0;border-radius:24px;cursor:pointer;" +
    "font:600 15px/1.2 system-ui,-apple-system,'Segoe UI',sans-serif;" +
    "background:var(--lw-brand,#1f4f46);color:var(--lw-on-brand,#fff);" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".launcher.right{right:20px}.launcher.left{left:20px}.launcher.icon{padding:0 14px}" +
    ".launcher:focus-visible{outline:3px solid #111;outline-offset:3px;box-shadow:0 0 0 6px #fff}" +
    ".launcher svg{width:22px;height:22px;fill:currentColor}" +
    ".badge{padding:2px 8px;border-radius:12px;background:var(--lw-on-brand,#fff);" +
    "color:var(--lw-brand,#1f4f46);font-size:13px}.badge:empty{display:none}";

  function sheet(root, css) {
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      var styles = new CSSStyleSheet();
      styles.replaceSync(css);
      root.adoptedStyleSheets = root.adoptedStyleSheets.concat(styles);
    } else {
      var element = document.createElement("style");
      element.textContent = css;
      root.appendChild(element);
    }
  }

  function widgetSettings() {
    var widget = (state.program && state.program.widget) || {};
    var texts = (widget.texts && widget.texts[lang]) || {};
    // The program's settings (the admin) win; the embed's attributes fill what they lack.
    return {
      color: widget.color || data.color,
      position: widget.position || data.position,
      label: texts.launcher || widget.launcher_label || data.label || text("launcher"),
      iconOnly: (widget.launcher || data.launcher) === "icon"
    };
  }

  function luminance(hex) {
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  // The brand colour and whichever of black or white reads better on it (WCAG contrast).
  function applyBrand(color) {
    if (!/^#[0-9a-f]{6}$/i.test(color || "")) return;
    var light = luminance(color);
    var onBrand = (light + 0.05) / 0.05 > 1.05 / (light + 0.05) ? "#111111" : "#ffffff";
    host.style.setProperty("--lw-brand", color);
    host.style.setProperty("--lw-on-brand", onBrand);
  }

  function icon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    var path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    path.setAttribute("d", "M20 7h-2.2A3 3 0 0 0 12 4.2 3 3 0 0 0 6.2 7H4a1 1 0 0 0-1 1v3h18V8" +
      "a1 1 0 0 0-1-1zM9 5a1.5 1.5 0 0 1 1.5 1.5V7H9a1 1 0 0 1 0-2zm6 2h-1.5v-.5A1.5 1.5 0 1 1 " +
      "15 7zM4 13v6a1 1 0 0 0 1 1h6v-7zm9 7h6a1 1 0 0 0 1-1v-6h-7z");
    svg.appendChild(path);
    return svg;
  }

  function drawLauncher() {
    if (launcher) return;
    host = document.createElement("div");
    host.id = "loyalty-widget";
    host.setAttribute("dir", lang === "ar" ? "rtl" : "ltr");
    host.setAttribute("lang", lang);
    root = host.attachShadow({mode: "open"});
    sheet(root, LAUNCHER_CSS);
    var look = widgetSettings();
    applyBrand(look.color);
    launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher " + (look.position === "left" ? "left" : "right") +
      (look.iconOnly ? " icon" : "");
    launcher.setAttribute("aria-haspopup", "dialog");
    launcher.setAttribute("aria-expanded", "false");
    launcher.appendChild(icon());
    if (!look.iconOnly) {
      var label = document.createElement("span");
      label.textContent = look.label;
      launcher.appendChild(label);
    }
    badge = document.createElement("span");
    badge.className = "badge";
    badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(badge);
    launcher.addEventListener("click", function () { command("open"); });
    // Start fetching the panel when the shopper is about to open it.
    launcher.addEventListener("pointerenter", loadPanel);
    launcher.addEventListener("focus", loadPanel);
    root.appendChild(launcher);
    document.body.appendChild(host);
    showBalance();
  }

  function plural(key, n) {
    var forms = text(key);
    var form = forms[new Intl.PluralRules(lang).select(n)] || forms.other;
    return form.replace("{n}", new Intl.NumberFormat(lang).format(n));
  }

  function showBalance() {
    if (!launcher) return;
    var look = widgetSettings();
    var balance = state.me ? state.me.balance : null;
    badge.textContent = balance === null ? "" : new Intl.NumberFormat(lang).format(balance);
    launcher.setAttribute("aria-label", balance === null ? look.label
      : look.label + ", " + plural("points", balance));
  }

  // --- "Points you'll earn" snippets ---------------------------------------------------------

  function pointsFor(amount) {
    var purchase = (state.program.ways_to_earn || [])[0] || {};
    var tier = state.me && state.me.tier;
    var raw = amount * Number(purchase.points_per_unit || 0) * (tier ? Number(tier.multiplier) : 1);
    // 19.99 × 3 is 59.969999… in floating point: settle to six places before rounding.
    var settled = Math.round(raw * 1e6) / 1e6;
    var round = {up: Math.ceil, nearest: Math.round}[purchase.rounding] || Math.floor;
    return Math.max(0, round(settled));
  }

  function renderSnippets() {
    var nodes = document.querySelectorAll("[data-loyalty-earn]");
    // Prices in another currency than the program's would earn wrong figures: show none.
    var shown = data.currency || state.program && state.program.program.currency;
    if (!state.program || !nodes.length || shown !== state.program.program.currency) return;
    if (!state.catalog) {
      loadCatalog().then(function (catalog) { state.catalog = catalog; renderSnippets(); });
      return;
    }
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var minor = node.getAttribute("data-price-minor");
      var amount = minor !== null ? Number(minor) / 100 : Number(node.getAttribute("data-price"));
      if (!isFinite(amount) || amount < 0) continue;
      var key = node.getAttribute("data-loyalty-earn") === "cart" ? "earnCart" : "earnProduct";
      var line = (state.catalog[key] || MANIFEST.strings.en[key]).replace("{n}", new Intl.NumberFormat(lang).format(pointsFor(amount)));
      // Writing the same text again would wake the observer below for ever.
      if (node.textContent !== line) node.textContent = line;
    }
  }

  // --- Panel and the public API --------------------------------------------------------------

  function loadPanel() {
    if (!panelLoad) {
      panelLoad = new Promise(function (resolve, reject) {
        window.LoyaltyWidget._mount = resolve;
        var tag = document.createElement("script");
        tag.src = assetBase + MANIFEST.panel;
        tag.async = true;
        tag.onerror = reject;
        document.head.appendChild(tag);
      }).then(function (mount) {
        panel = mount({
          root: root, host: host, launcher: launcher, lang: lang, platform: platform,
          signedIn: signedIn, data: data, state: state, request: request,
          loadProgram: loadProgram, loadMe: loadMe, showBalance: showBalance,
          catalog: lang === "en" ? Promise.resolve({}) : loadCatalog()
        });
        return panel;
      }, function (error) { panelLoad = null; throw error; });
    }
    return panelLoad;
  }

  function command(name) {
    if (name === "refresh") {
      Promise.all([loadProgram(true), loadMe(true)]).then(renderSnippets, function () {
        /* the badge and snippets keep their last values */
      }).then(function () { if (panel) panel.refresh(); });
      return;
    }
    if (name === "close") { if (panel) panel.close(); return; }
    if (name === "open") {
      drawLauncher();
      loadPanel().then(function (p) { p.open(); }, function () {
        launcher.setAttribute("aria-label", widgetSettings().label);
      });
    }
  }

  function api(name) {
    if (ready) command(name); else queued.push(name);
  }
  api.loaded = true;
  api.open = function () { api("open"); };
  api.close = function () { api("close"); };
  api.refresh = function () { api("refresh"); };
  var ready = false;
  var earlier = (previous && previous.q) || [];
  window.LoyaltyWidget = api;

  // The one request before idle: a signed-in member's balance for the badge.
  loadMe().catch(function () { /* shown as an error when the panel opens */ });

  function whenIdle(callback) {
    if (window.requestIdleCallback) window.requestIdleCallback(callback, {timeout: 3000});
    else window.setTimeout(callback, 1200);
  }

  function start() {
    loadProgram().then(renderSnippets, function () { /* the panel shows the error */ })
      .then(function () {
        drawLauncher();
        ready = true;
        if (window.MutationObserver) {
          var pending = false;
          new MutationObserver(function () {
            if (pending) return;
            pending = true;
            window.requestAnimationFrame(function () { pending = false; renderSnippets(); });
          }).observe(document.body, {childList: true, subtree: true, attributes: true,
            attributeFilter: ["data-price", "data-price-minor"]});
        }
        if (data.open !== undefined) queued.unshift("open");
        earlier.concat(queued).forEach(function (args) {
          command(typeof args === "string" ? args : args[0]);
        });
        queued = [];
      });
  }

  if (data.open !== undefined) start(); else whenIdle(start);
})();
