<?php
/**
 * Start-up, activation and the small admin touches (settings link, setup notice).
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Wires the parts together.
 */
final class Loyalty_Plugin {

	/** User meta: the "finish setting up" notice was dismissed (uninstall.php deletes it). */
	const NOTICE_DISMISSED_META = 'loyalty_wc_setup_notice_dismissed';

	/** The query argument and nonce action of the notice's dismiss link. */
	const DISMISS_ACTION = 'loyalty_wc_dismiss_setup';

	/**
	 * Hooks everything (on plugins_loaded, once WooCommerce is loaded).
	 */
	public static function init(): void {
		Loyalty_Settings::init();
		Loyalty_Admin_Link::init();
		if ( class_exists( 'WooCommerce' ) ) {
			Loyalty_Storefront::init();
			Loyalty_Account::init();
		}
		add_filter( 'plugin_action_links_' . plugin_basename( LOYALTY_WC_FILE ), array( __CLASS__, 'action_links' ) );
		add_action( 'admin_notices', array( __CLASS__, 'setup_notice' ) );
		add_action( 'admin_init', array( __CLASS__, 'dismiss_setup_notice' ) );
	}

	/**
	 * Activation: add the My Account endpoint's rewrite rules.
	 */
	public static function activate(): void {
		Loyalty_Account::add_endpoint();
		flush_rewrite_rules();
	}

	/**
	 * Deactivation: drop the endpoint's rewrite rules.
	 */
	public static function deactivate(): void {
		Loyalty_Account::remove_endpoint();
		flush_rewrite_rules();
	}

	/**
	 * Tells WooCommerce the plugin works with High-Performance Order Storage (it reads no orders).
	 */
	public static function declare_compatibility(): void {
		if ( class_exists( '\Automattic\WooCommerce\Utilities\FeaturesUtil' ) ) {
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'custom_order_tables', LOYALTY_WC_FILE, true );
		}
	}

	/**
	 * A "Settings" link on the Plugins screen.
	 *
	 * @param array $links The plugin's action links.
	 * @return array
	 */
	public static function action_links( $links ) {
		if ( is_array( $links ) && current_user_can( Loyalty_Settings::capability() ) ) {
			array_unshift( $links, '<a href="' . esc_url( Loyalty_Settings::page_url() ) . '">' . esc_html__( 'Settings', 'loyalty-for-woocommerce' ) . '</a>' );
		}
		return $links;
	}

	/**
	 * On the Dashboard and Plugins screens, until the plugin is configured (or the notice
	 * dismissed): where to finish setting up.
	 */
	public static function setup_notice(): void {
		if ( Loyalty_Settings::is_configured() || ! current_user_can( Loyalty_Settings::capability() ) ) {
			return;
		}
		$screen = function_exists( 'get_current_screen' ) ? get_current_screen() : null;
		if ( ! $screen || ! in_array( $screen->id, array( 'dashboard', 'plugins' ), true ) ) {
			return;
		}
		if ( get_user_meta( get_current_user_id(), self::NOTICE_DISMISSED_META, true ) ) {
			return;
		}
		$dismiss = wp_nonce_url( add_query_arg( self::DISMISS_ACTION, '1' ), self::DISMISS_ACTION );
		echo '<div class="notice notice-info"><p>';
		echo esc_html__( 'Loyalty for WooCommerce is not connected yet.', 'loyalty-for-woocommerce' ) . ' ';
		echo '<a href="' . esc_url( Loyalty_Settings::page_url() ) . '">' . esc_html__( 'Finish setting up', 'loyalty-for-woocommerce' ) . '</a> | ';
		echo '<a href="' . esc_url( $dismiss ) . '">' . esc_html__( 'Dismiss', 'loyalty-for-woocommerce' ) . '</a>';
		echo '</p></div>';
	}

	/**
	 * Handles the notice's dismiss link (nonce-checked).
	 */
	public static function dismiss_setup_notice(): void {
		if ( ! isset( $_GET[ self::DISMISS_ACTION ] ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- checked just below.
			return;
		}
		check_admin_referer( self::DISMISS_ACTION );
		update_user_meta( get_current_user_id(), self::NOTICE_DISMISSED_META, '1' );
		wp_safe_redirect( remove_query_arg( array( self::DISMISS_ACTION, '_wpnonce' ) ) );
		exit;
	}
}
