/*
 * Loyalty widget panel: loaded by the loader on the first interaction, drawn in the
 * loader's shadow root. A modal dialog: focus trap, Esc closes, focus goes back to where it
 * was. Every merchant or shopper text goes through textContent; nothing becomes HTML.
 *
 * This file is the frame. At build time plugin_server/widget_bundle.py puts the parts
 * (PANEL_PARTS there: blocks.js, dialog.js, views.js, redeem.js, in that order) in place of
 * the marker in mount() below, so they share its closure: the state declared here and each
 * other's functions. A part is a run of statements, never `return`.
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

    __PANEL_PARTS__ // the parts; no ";" here, it would stay in the bundle as an empty statement

    return {
      open: open,
      close: close,
      // After the loader has fetched anew: draw what it got.
      refresh: function () { return dialog.hidden ? Promise.resolve() : refresh(false); }
    };
  }

  window.LoyaltyWidget._mount(mount);
})();
