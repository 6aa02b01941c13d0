/*
 * Loyalty widget panel: loaded by the loader on the first interaction, drawn in the
 * loader's shadow root. A modal dialog: focus trap, Esc closes, focus goes back to where it
 * was. Every merchant or shopper text goes through textContent; nothing becomes HTML.
 */
(function () {
  "use strict";
  // Replaced at build time: the panel's styles and the English catalog (the per-string
  // fallback for every other language).
  var CSS = __PANEL_CSS__;
  var EN = __EN_CATALOG__;

  function mount(ctx) {
    var lang = ctx.lang;
    var catalog = {};
    var numbers = new Intl.NumberFormat(lang);
    var plurals = new Intl.PluralRules(lang);
    var dates = new Intl.DateTimeFormat(lang, {dateStyle: "medium"});
    var opener = null;
    var fresh = null; // the redemption just made, shown on top until the panel closes
    var notice = "";
    var keys = {}; // reward id -> Idempotency-Key, kept until the server answers

    // --- Building blocks ---------------------------------------------------------------------

    function el(tag, props, children) {
      var node = document.createElement(tag);
      Object.keys(props || {}).forEach(function (name) {
        var value = props[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") node.textContent = value;
        else if (name === "class") node.className = value;
        else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), value);
        else node.setAttribute(name, value === true ? "" : value);
      });
      (children || []).forEach(function (child) {
        if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      });
      return node;
    }

    function fill(template, values) {
      return String(template).replace(/\{(\w+)\}/g, function (all, name) {
        return values && values[name] !== undefined ? values[name] : all;
      });
    }

    function t(key, values) {
      var own = catalog[key];
      return fill(typeof own === "string" ? own : EN[key], values);
    }

    function tn(key, n, values) {
      var forms = catalog[key] && typeof catalog[key] === "object" ? catalog[key] : EN[key];
      var category = plurals.select(n);
      var form = forms[category] || forms.other ||
        EN[key][new Intl.PluralRules("en").select(n)] || EN[key].other;
      var all = {n: numbers.format(n)};
      Object.keys(values || {}).forEach(function (name) { all[name] = values[name]; });
      return fill(form, all);
    }

    function currency() {
      return (ctx.state.program && ctx.state.program.program.currency) || ctx.data.currency || "USD";
    }

    function money(amount) {
      try {
        return new Intl.NumberFormat(lang, {style: "currency", currency: currency()})
          .format(Number(amount));
      } catch (error) {
        return numbers.format(Number(amount)) + " " + currency();
      }
    }

    function date(iso) { return dates.format(new Date(iso)); }

    // Merchant texts in the shopper's language when the merchant wrote them, else as set.
    function texts() {
      var widget = (ctx.state.program && ctx.state.program.widget) || {};
      return (widget.texts && widget.texts[lang]) || {};
    }

    function merchantText(group, id, fallback) {
      var own = texts()[group];
      return (own && own[String(id)]) || fallback;
    }

    function safeLink(url, fallback) {
      try {
        var parsed = new URL(url || fallback, document.baseURI);
        return /^https?:$/.test(parsed.protocol) ? parsed.href : fallback;
      } catch (error) {
        return fallback;
      }
    }

    // --- The dialog ----------------------------------------------------------------------------

    if (ctx.root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      ctx.root.adoptedStyleSheets = ctx.root.adoptedStyleSheets.concat(sheet);
    } else {
      // Browsers before constructable stylesheets (Safari < 16.4); blocked by a strict CSP.
      ctx.root.appendChild(el("style", {text: CSS}));
    }

    // dir=auto on merchant texts: an English reward name reads left to right in Arabic.
    var title = el("h2", {id: "lw-title", class: "title", dir: "auto"});
    var closeButton = el("button", {type: "button", class: "close", onclick: close},
      [el("span", {"aria-hidden": "true", text: "×"})]);
    var body = el("div", {class: "body"});
    var live = el("div", {class: "sr", "aria-live": "polite", role: "status"});
    var dialog = el("div", {
      class: "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "lw-title",
      dir: lang === "ar" ? "rtl" : "ltr", lang: lang, tabindex: "-1", hidden: true,
      onkeydown: onKey
    }, [el("div", {class: "head"}, [title, closeButton]), body, live]);
    var backdrop = el("div", {class: "backdrop", hidden: true, onclick: close});
    ctx.root.appendChild(backdrop);
    ctx.root.appendChild(dialog);

    function focusables() {
      return Array.prototype.filter.call(
        dialog.querySelectorAll("button, a[href], [tabindex='0']"),
        function (node) { return !node.disabled && node.offsetParent !== null; });
    }

    function onKey(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      } else if (event.key === "Tab") {
        var items = focusables();
        if (!items.length) return;
        var first = items[0], last = items[items.length - 1];
        var active = ctx.root.activeElement;
        if (event.shiftKey && (active === first || active === dialog)) {
          event.preventDefault();
          last.focus();
        } else if (!event.shiftKey && active === last) {
          event.preventDefault();
          first.focus();
        }
      }
    }

    function open() {
      if (!dialog.hidden) return;
      var active = document.activeElement;
      opener = active === ctx.host ? ctx.launcher : active;
      dialog.hidden = false;
      backdrop.hidden = false;
      ctx.launcher.setAttribute("aria-expanded", "true");
      render();
      dialog.focus();
      refresh();
    }

    function close() {
      if (dialog.hidden) return;
      dialog.hidden = true;
      backdrop.hidden = true;
      fresh = null;
      notice = "";
      // A key kept for a retry belongs to this visit: reopening is a new intent.
      keys = {};
      ctx.launcher.setAttribute("aria-expanded", "false");
      var target = opener && opener.isConnected ? opener : ctx.launcher;
      if (target && target.focus) target.focus();
    }

    var loadError = null;

    function refresh(force) {
      loadError = null;
      return Promise.all([
        ctx.catalog.then(function (loaded) { catalog = loaded || {}; }),
        // Reuse what the loader already fetched; ask again only for what is missing.
        ctx.loadProgram(!ctx.state.program),
        ctx.loadMe(force || !ctx.state.me)
      ]).then(function () { /* render below */ }, function (error) {
        loadError = error;
      }).then(render);
    }

    window.addEventListener("online", function () { if (!dialog.hidden && loadError) refresh(); });

    // --- Views ---------------------------------------------------------------------------------

    function render() {
      var program = ctx.state.program;
      title.textContent = texts().program_name || (program && program.program.name) || t("rewards");
      closeButton.setAttribute("aria-label", t("close"));
      var focused = ctx.root.activeElement;
      var focusKey = focused && focused.getAttribute && focused.getAttribute("data-key");
      var focusInside = !!focused && dialog.contains(focused);
      body.textContent = "";
      var content;
      // On Shopify a 401 means the App Proxy sees no signed-in customer: show the guest view.
      // Elsewhere the plugin's signed identity has aged past its window: reload to renew it.
      if (loadError && loadError.status === 401 && program && ctx.platform === "shopify") {
        content = guestView(program);
      } else if (loadError) content = errorView();
      else if (!program || (ctx.signedIn && !ctx.state.me)) content = [loadingView()];
      else if (ctx.signedIn) content = memberView(program, ctx.state.me);
      else content = guestView(program);
      content.forEach(function (node) { if (node) body.appendChild(node); });
      // Keep focus where it was, or at least inside the dialog, so Tab and Esc keep working.
      var again = focusKey && body.querySelector("[data-key='" + focusKey + "']");
      if (again && !again.disabled) again.focus();
      else if (focusInside && !dialog.contains(ctx.root.activeElement)) dialog.focus();
    }

    function section(heading, children) {
      return el("section", {}, [el("h3", {text: heading})].concat(children));
    }

    function loadingView() {
      return el("p", {class: "state", role: "status"}, [el("span", {class: "spinner"}), t("loading")]);
    }

    function errorView() {
      // No HTTP status at all: the request never reached a server.
      var offline = navigator.onLine === false || !(loadError && loadError.status);
      return [el("div", {class: "state", role: "alert"}, [
        el("p", {text: offline ? t("offline") : loadError.status === 401 ? t("reload")
          : t("error")}),
        el("button", {type: "button", class: "secondary", "data-key": "retry", text: t("retry"),
          onclick: function () { loadError = null; render(); refresh(true); }})
      ])];
    }

    function guestView(program) {
      var widget = program.widget || {};
      var signInUrl = safeLink(widget.sign_in_url, ctx.platform === "shopify" ? "/account/login"
        : "/my-account/");
      var joinUrl = safeLink(widget.join_url, ctx.platform === "shopify" ? "/account/register"
        : "/my-account/");
      return [
        el("div", {class: "intro"}, [
          el("p", {text: texts().explainer || widget.explainer || t("explainer")}),
          el("div", {class: "actions"}, [
            el("a", {class: "button", href: joinUrl, text: t("join"), "data-key": "join"}),
            el("a", {class: "button secondary", href: signInUrl, text: t("signIn"),
              "data-key": "sign-in"})
          ]),
          el("p", {class: "muted", text: t("signInPrompt")})
        ]),
        earnSection(program),
        rewardsSection(program, null),
        tiersSection(program)
      ];
    }

    function memberView(program, me) {
      var views = [balanceCard(me), tierCard(program, me)];
      if (fresh) views.push(codeCard(fresh, true));
      if (notice) views.push(el("p", {class: "notice", role: "alert", text: notice}));
      return views.concat([
        rewardsSection(program, me), earnSection(program), tiersSection(program),
        codesSection(me), activitySection(me)
      ]);
    }

    function balanceCard(me) {
      var children = [
        el("span", {class: "label", text: t("available")}),
        el("strong", {class: "balance", text: numbers.format(me.balance)})
      ];
      if (me.pending > 0) {
        children.push(el("span", {class: "muted", text: tn("pending", me.pending)}));
        children.push(el("span", {class: "muted small", text: t("pendingNote")}));
      }
      return el("div", {class: "card balance-card"}, children);
    }

    function tierName(tier) { return merchantText("tiers", tier.id, tier.name); }

    function remainingText(program, next) {
      var values = {tier: tierName(next)};
      var remaining = Number(next.remaining);
      if (program.tier_basis === "amount_spent") {
        return t("toNextAmount", {amount: money(remaining), tier: values.tier});
      }
      return tn(program.tier_basis === "orders" ? "toNextOrders" : "toNextPoints",
        Math.ceil(remaining), values);
    }

    function tierCard(program, me) {
      if (!program.tiers || !program.tiers.length) return null;
      var next = me.next_tier;
      var children = [
        el("span", {class: "label", text: t("yourTier")}),
        el("strong", {text: me.tier ? tierName(me.tier) : t("noTier"), dir: "auto"})
      ];
      if (next) {
        var caption = remainingText(program, next);
        var fillBar = el("span", {class: "fill"});
        // A CSSOM property, not a style attribute: allowed under a strict CSP.
        fillBar.style.width = Math.max(0, Math.min(100, Number(next.percent))) + "%";
        var bar = el("div", {class: "bar", role: "progressbar", "aria-valuemin": "0",
          "aria-valuemax": "100", "aria-valuenow": String(next.percent), "aria-label": caption},
        [fillBar]);
        children.push(bar, el("span", {class: "small", text: caption}));
        var perks = tierPerks(next);
        if (perks.length) {
          children.push(el("span", {class: "small muted", text: t("unlocks") + " " +
            perks.join(" · ")}));
        }
      } else if (me.tier) {
        children.push(el("span", {class: "small", text: t("topTier")}));
      }
      return el("div", {class: "card"}, children);
    }

    function tierPerks(tier) {
      var perks = [];
      if (Number(tier.multiplier) !== 1) {
        perks.push(t("tierMultiplier", {factor: numbers.format(Number(tier.multiplier))}));
      }
      if (tier.entry_reward_points > 0) perks.push(tn("tierBonus", tier.entry_reward_points));
      var own = merchantText("perks", tier.id, tier.perks);
      if (own) perks.push(own);
      return perks;
    }

    function earnSection(program) {
      var items = (program.ways_to_earn || []).map(function (way) {
        if (way.kind === "purchase") {
          var rate = Number(way.points_per_unit);
          // "1 point for every $1", or "1 point for every $0.50" for 2 points per unit.
          var per = rate >= 1 || rate === 0 ? {n: rate, amount: 1} : {n: 1, amount: 1 / rate};
          return el("li", {text: tn("earnPurchase", per.n, {amount: money(per.amount)})});
        }
        return el("li", {text: t("earnMultiplier", {
          factor: numbers.format(Number(way.factor)), label: way.label || way.target_id})});
      });
      return section(t("waysToEarn"), [el("ul", {class: "list"}, items)]);
    }

    function rewardDetail(reward) {
      var detail = reward.kind === "free_shipping" ? t("rewardShipping")
        : reward.kind === "percentage"
          ? t("rewardPercent", {percent: new Intl.NumberFormat(lang, {style: "percent",
            maximumFractionDigits: 2}).format(Number(reward.value) / 100)})
          : t("rewardFixed", {amount: money(reward.value)});
      // "Free shipping" named "Free shipping" needs no second line saying so.
      if (detail === merchantText("rewards", reward.id, reward.name)) detail = "";
      if (reward.minimum_subtotal) {
        detail += (detail ? " · " : "") + t("minimum", {amount: money(reward.minimum_subtotal)});
      }
      return detail;
    }

    function rewardsSection(program, me) {
      var rewards = program.rewards || [];
      if (!rewards.length) return section(t("rewards"), [el("p", {class: "muted", text: t("noRewards")})]);
      var items = rewards.map(function (reward) {
        var name = merchantText("rewards", reward.id, reward.name);
        var row = [el("div", {class: "grow"}, [
          el("strong", {text: name, dir: "auto"}),
          el("span", {class: "small muted", text: rewardDetail(reward) || null}),
          el("span", {class: "small", text: tn("points", reward.points_cost)})
        ])];
        if (me) {
          var short = reward.points_cost - me.balance;
          var hint = short > 0 ? el("span", {id: "need-" + reward.id, class: "small muted",
            text: tn("needMore", short)}) : null;
          var busy = keys[reward.id] && keys[reward.id].busy;
          row.push(el("div", {class: "redeem"}, [
            el("button", {type: "button", "data-key": "redeem-" + reward.id,
              disabled: short > 0 || busy, "aria-describedby": hint ? hint.id : null,
              "aria-label": t("redeem") + ": " + name,
              text: busy ? t("redeeming") : t("redeem"),
              onclick: function () { redeem(reward); }}), hint]));
        }
        return el("li", {class: "reward"}, row);
      });
      var children = [el("ul", {class: "list rewards"}, items)];
      if (!me) children.push(el("p", {class: "muted small", text: t("signInToRedeem")}));
      return section(t("rewards"), children);
    }

    function copyButton(code) {
      var button = el("button", {type: "button", class: "secondary small-button",
        "data-key": "copy-" + code, "aria-label": t("copy") + " " + code, text: t("copy"),
        onclick: function () {
          var done = function () {
            button.textContent = t("copied");
            live.textContent = t("copied");
          };
          if (navigator.clipboard && navigator.clipboard.writeText) {
            navigator.clipboard.writeText(code).then(done, function () { select(code); });
          } else {
            select(code);
          }
        }});
      return button;
    }

    // Without clipboard access, select the code so the shopper can copy it by hand.
    function select(code) {
      var target = body.querySelector("[data-code='" + code.replace(/[^\w-]/g, "") + "']");
      if (!target) return;
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }

    function expiry(redemption) {
      return redemption.expires_at ? t("expires", {date: date(redemption.expires_at)})
        : t("noExpiry");
    }

    function codeCard(redemption, isNew) {
      return el("div", {class: "card code-card" + (isNew ? " new" : ""), role: isNew ? "status" : null},
        [
          el("span", {class: "label", text: isNew ? t("yourCode") : merchantText("rewards",
            redemption.reward_id, redemption.reward_name)}),
          el("div", {class: "code-row"}, [
            el("code", {"data-code": redemption.code.replace(/[^\w-]/g, ""), text: redemption.code}),
            copyButton(redemption.code)
          ]),
          el("span", {class: "small muted", text: expiry(redemption) +
            (isNew ? " · " + t("useAtCheckout") : "")})
        ]);
    }

    function codesSection(me) {
      var codes = (me.codes || []).filter(function (c) { return !fresh || c.id !== fresh.id; });
      if (!codes.length) return section(t("pastCodes"), [el("p", {class: "muted", text: t("noCodes")})]);
      return section(t("pastCodes"), codes.map(function (c) { return codeCard(c, false); }));
    }

    function activitySection(me) {
      var history = me.history || [];
      if (!history.length) return section(t("activity"), [el("p", {class: "muted", text: t("noActivity")})]);
      return section(t("activity"), [el("ul", {class: "list activity"}, history.map(function (e) {
        var points = e.points || e.pending_points || 0;
        var signed = (points > 0 ? "+" : points < 0 ? "−" : "") + numbers.format(Math.abs(points));
        return el("li", {}, [
          el("div", {class: "grow"}, [
            el("span", {text: t("kind_" + e.kind)}),
            el("span", {class: "small muted", text: date(e.created_at)})
          ]),
          el("span", {class: "delta " + (points < 0 ? "minus" : "plus"), text: signed})
        ]);
      }))]);
    }

    function tiersSection(program) {
      var tiers = program.tiers || [];
      if (!tiers.length) return null;
      var window_ = {calendar_year: t("windowYear"), rolling_12_months: t("windowRolling")}[
        program.tier_window];
      var items = tiers.map(function (tier) {
        var threshold = Number(tier.threshold);
        // The entry tier (threshold 0) has nothing to reach.
        var reach = threshold <= 0 ? null : program.tier_basis === "amount_spent"
          ? t("tierAmount", {amount: money(threshold)})
          : tn(program.tier_basis === "orders" ? "tierOrders" : "tierPoints", threshold);
        return el("li", {}, [el("div", {class: "grow"}, [
          el("strong", {text: tierName(tier), dir: "auto"}),
          el("span", {class: "small muted", text: reach}),
          el("span", {class: "small", text: tierPerks(tier).join(" · ") || null})
        ])]);
      });
      var children = [el("ul", {class: "list"}, items)];
      if (window_) children.push(el("p", {class: "small muted", text: window_}));
      return section(t("tiers"), children);
    }

    // --- Redeeming -------------------------------------------------------------------------------

    function newKey() {
      if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
      return Date.now().toString(36) + Math.random().toString(36).slice(2);
    }

    function redeem(reward) {
      var pending = keys[reward.id] = keys[reward.id] || {key: newKey()};
      if (pending.busy) return;
      pending.busy = true;
      notice = "";
      render();
      live.textContent = t("redeeming");
      var reload = function () {
        return ctx.loadMe(true).catch(function () { /* keep the last balance */ });
      };
      ctx.request("POST", "/redeem", {reward_id: reward.id}, false,
        {"Idempotency-Key": pending.key}).then(function (answer) {
        delete keys[reward.id];
        fresh = answer.redemption;
        live.textContent = t("yourCode") + ": " + fresh.code;
        return reload();
      }, function (error) {
        var status = error.status;
        var code = error.body && error.body.error;
        // Our server's final answers carry an error code; it is stored under this key, so a
        // new attempt needs a new key. No answer, a gateway's answer or "still in progress"
        // may hide a redemption that went through: keep the key, so trying again replays it
        // instead of redeeming twice.
        var unsure = !status || !code || code === "idempotency_conflict" ||
          (status >= 500 && code !== "platform_refused" && code !== "not_configured");
        if (unsure) pending.busy = false; else delete keys[reward.id];
        notice = unsure ? t("redeemUnsure")
          : code === "insufficient_points" && error.body.shortfall
            ? tn("redeemShort", error.body.shortfall)
            : status === 429 ? t("redeemBusy") : status === 401 ? t("signInToRedeem")
              : t("redeemFailed");
        live.textContent = notice;
        return reload();
      }).then(function () {
        ctx.showBalance();
        render();
        var focusTarget = body.querySelector(fresh ? ".code-card.new button" : ".notice");
        if (focusTarget && focusTarget.focus) {
          if (!fresh) focusTarget.setAttribute("tabindex", "-1");
          focusTarget.focus();
        }
      });
    }

    return {
      open: open,
      close: close,
      // After the loader has fetched anew: draw what it got.
      refresh: function () { return dialog.hidden ? Promise.resolve() : refresh(false); }
    };
  }

  window.LoyaltyWidget._mount(mount);
})();
