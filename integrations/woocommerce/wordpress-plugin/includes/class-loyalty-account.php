<?php
/**
 * The "Rewards" tab in My Account (endpoint "loyalty"): opens the widget's panel.
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Registers the endpoint with WooCommerce, adds the tab, prints its container and enqueues
 * assets/account.js, which asks the widget to open.
 */
final class Loyalty_Account {

	/** The My Account endpoint (/my-account/loyalty/). */
	const ENDPOINT = 'loyalty';

	/** The script that opens the panel. */
	const HANDLE = 'loyalty-wc-account';

	/**
	 * Hooks the tab.
	 */
	public static function init(): void {
		add_filter( 'woocommerce_get_query_vars', array( __CLASS__, 'query_vars' ) );
		add_filter( 'woocommerce_account_menu_items', array( __CLASS__, 'menu_items' ) );
		add_filter( 'woocommerce_endpoint_' . self::ENDPOINT . '_title', array( __CLASS__, 'title' ) );
		add_action( 'woocommerce_account_' . self::ENDPOINT . '_endpoint', array( __CLASS__, 'content' ) );
		add_action( 'wp_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
	}

	/**
	 * Registers the rewrite endpoint directly (activation runs after WooCommerce registered
	 * its own endpoints on init, so the query_vars filter is too late there).
	 */
	public static function add_endpoint(): void {
		add_rewrite_endpoint( self::ENDPOINT, EP_ROOT | EP_PAGES );
	}

	/**
	 * Forgets the endpoint for this request, so a flush drops its rewrite rules.
	 */
	public static function remove_endpoint(): void {
		global $wp_rewrite;
		if ( isset( $wp_rewrite ) && is_array( $wp_rewrite->endpoints ) ) {
			$wp_rewrite->endpoints = array_values(
				array_filter(
					$wp_rewrite->endpoints,
					static function ( $endpoint ): bool {
						return ! ( is_array( $endpoint ) && isset( $endpoint[1] ) && self::ENDPOINT === $endpoint[1] );
					}
				)
			);
		}
	}

	/**
	 * Makes "loyalty" a WooCommerce endpoint (rewrite rule, is_wc_endpoint_url()).
	 *
	 * @param array $vars Endpoint => query var.
	 * @return array
	 */
	public static function query_vars( $vars ) {
		if ( is_array( $vars ) ) {
			$vars[ self::ENDPOINT ] = self::ENDPOINT;
		}
		return $vars;
	}

	/**
	 * Adds "Rewards" before "Log out" once the plugin is configured.
	 *
	 * @param array $items Endpoint => label.
	 * @return array
	 */
	public static function menu_items( $items ) {
		if ( ! is_array( $items ) || ! Loyalty_Settings::is_configured() ) {
			return $items;
		}
		$label  = __( 'Rewards', 'loyalty-for-woocommerce' );
		$result = array();
		foreach ( $items as $endpoint => $item_label ) {
			if ( 'customer-logout' === $endpoint ) {
				$result[ self::ENDPOINT ] = $label;
			}
			$result[ $endpoint ] = $item_label;
		}
		if ( ! isset( $result[ self::ENDPOINT ] ) ) {
			$result[ self::ENDPOINT ] = $label;
		}
		return $result;
	}

	/**
	 * The tab's page title.
	 *
	 * @return string
	 */
	public static function title(): string {
		return __( 'Rewards', 'loyalty-for-woocommerce' );
	}

	/**
	 * The tab's content: the container the panel opens over.
	 */
	public static function content(): void {
		if ( ! Loyalty_Settings::is_configured() ) {
			echo '<p>' . esc_html__( 'Rewards are not available yet.', 'loyalty-for-woocommerce' ) . '</p>';
			return;
		}
		echo '<div id="loyalty-account"></div>';
	}

	/**
	 * Enqueues assets/account.js on the Rewards tab.
	 */
	public static function enqueue(): void {
		if ( Loyalty_Settings::is_configured() && function_exists( 'is_wc_endpoint_url' ) && is_wc_endpoint_url( self::ENDPOINT ) ) {
			wp_enqueue_script( self::HANDLE, LOYALTY_WC_URL . 'assets/account.js', array(), LOYALTY_WC_VERSION, true );
		}
	}
}
