/*
 * Panel part: redeeming a reward, once. Each attempt carries an Idempotency-Key kept per
 * reward until the server gives a final answer, so a retry after an unsure one replays the
 * same redemption instead of making a second.
 */

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
