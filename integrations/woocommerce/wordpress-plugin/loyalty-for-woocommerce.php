<?php
/**
 * Plugin Name:       Loyalty for WooCommerce
 * Description:       Connects a WooCommerce store to a self-hosted Loyalty server: the storefront rewards widget, "points you'll earn" lines, a Rewards tab in My Account and a one-click sign-in to the loyalty admin.
 * Version:           0.1.0
 * Requires at least: 5.8
 * Requires PHP:      7.4
 * Requires Plugins:  woocommerce
 * Author:            Loyalty contributors
 * License:           MIT
 * License URI:       https://opensource.org/licenses/MIT
 * Text Domain:       loyalty-for-woocommerce
 *
 * What the plugin asks of the loyalty server (see readme.txt, "Server contract"):
 *
 * - GET  {server}/widget/loader.js          the widget, loaded on every storefront page.
 * - GET  {server}/woocommerce/connect?store_url={home_url()}
 *                                           where the settings page's Connect button goes.
 * - the widget posts the signed shopper identity this plugin prints (data-identity:
 *   {"store_id", "customer_id", "email", "ts", "sig"}, sig = lowercase hex
 *   HMAC-SHA256(widget secret, "store_id|customer_id|email|ts")) to {server}/api/storefront.
 * - POST {server}/api/woocommerce/admin-link  JSON {"store_id", "ts", "sig"} with
 *   sig = lowercase hex HMAC-SHA256(widget secret, "admin|store_id|ts") and ts in Unix
 *   seconds; answers 200 JSON {"url": "<one-time /admin/login?token=... link>"}. The
 *   "Loyalty" admin menu calls it and sends the merchant to that URL (https, or http on
 *   localhost only).
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

define( 'LOYALTY_WC_VERSION', '0.1.0' );
define( 'LOYALTY_WC_FILE', __FILE__ );
define( 'LOYALTY_WC_URL', plugin_dir_url( __FILE__ ) );

require_once __DIR__ . '/includes/class-loyalty-identity.php';
require_once __DIR__ . '/includes/class-loyalty-locale.php';
require_once __DIR__ . '/includes/class-loyalty-urls.php';
require_once __DIR__ . '/includes/class-loyalty-settings.php';
require_once __DIR__ . '/includes/class-loyalty-storefront.php';
require_once __DIR__ . '/includes/class-loyalty-account.php';
require_once __DIR__ . '/includes/class-loyalty-admin-link.php';
require_once __DIR__ . '/includes/class-loyalty-plugin.php';

register_activation_hook( __FILE__, array( 'Loyalty_Plugin', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'Loyalty_Plugin', 'deactivate' ) );
add_action( 'before_woocommerce_init', array( 'Loyalty_Plugin', 'declare_compatibility' ) );
add_action( 'plugins_loaded', array( 'Loyalty_Plugin', 'init' ) );
