/*
 * Product page: keep the "points you'll earn" line on the chosen variation's price. The
 * widget redraws the line when data-price changes.
 */
(function ($) {
  "use strict";
  $(function () {
    var line = document.querySelector('p.loyalty-earn[data-loyalty-earn=""]');
    if (!line) return;
    var original = line.getAttribute("data-price");
    $(".variations_form")
      .on("found_variation", function (event, variation) {
        if (variation && typeof variation.loyalty_earn_price === "string") {
          line.setAttribute("data-price", variation.loyalty_earn_price);
        }
      })
      .on("reset_data", function () {
        if (original !== null) line.setAttribute("data-price", original);
      });
  });
})(jQuery);
