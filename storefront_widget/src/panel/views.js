/*
 * Panel part: the views. render() redraws the body from the state and keeps focus; a guest
 * sees how to join and what there is, a member their balance, tier, rewards, codes and
 * activity.
 */

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
