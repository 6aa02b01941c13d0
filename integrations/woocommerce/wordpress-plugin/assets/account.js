/*
 * My Account → Rewards: open the loyalty panel. Works whether or not the widget loader has
 * run yet: before it has, the call waits on the usual queue stub, which the loader replays.
 */
(function () {
  "use strict";
  window.LoyaltyWidget = window.LoyaltyWidget || function () {
    (window.LoyaltyWidget.q = window.LoyaltyWidget.q || []).push(arguments);
  };
  window.LoyaltyWidget("open");
})();
