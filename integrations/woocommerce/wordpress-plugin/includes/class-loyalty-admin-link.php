<?php
/**
 * The "Loyalty" admin menu: signs the merchant in to the loyalty admin.
 *
 * Contract (the server side is documented in readme.txt, "Server contract"):
 *   POST {server}/api/woocommerce/admin-link
 *   Content-Type: application/json
 *   {"store_id": "<store id>", "ts": <Unix seconds>, "sig": "<hex>"}
 *   sig = lowercase hex HMAC-SHA256, keyed with the widget secret, of "admin|store_id|ts"
 *   → 200 {"url": "https://…/admin/login?token=…"} (a one-time link); any other answer is a
 *   failure, and {"message": "…"} in it is shown to the merchant.
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Asks the server for a one-time sign-in link before the page prints anything and
 * redirects there; on failure the page shows why.
 */
final class Loyalty_Admin_Link {

	/** The menu page slug. */
	const PAGE = 'loyalty-wc-admin';

	/**
	 * Why the last attempt failed, shown by render().
	 *
	 * @var string
	 */
	private static $error = '';

	/**
	 * Hooks the menu.
	 */
	public static function init(): void {
		add_action( 'admin_menu', array( __CLASS__, 'add_menu' ) );
	}

	/**
	 * Adds the top-level "Loyalty" menu; loading it asks for the link.
	 */
	public static function add_menu(): void {
		$title = __( 'Loyalty', 'loyalty-for-woocommerce' );
		$hook  = add_menu_page( $title, $title, Loyalty_Settings::capability(), self::PAGE, array( __CLASS__, 'render' ), 'dashicons-awards', 58 );
		if ( $hook ) {
			add_action( 'load-' . $hook, array( __CLASS__, 'open' ) );
		}
	}

	/**
	 * Runs before any output: redirects to the sign-in link, or records why not.
	 */
	public static function open(): void {
		if ( ! current_user_can( Loyalty_Settings::capability() ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage the loyalty program.', 'loyalty-for-woocommerce' ), 403 );
		}
		if ( ! Loyalty_Settings::is_configured() ) {
			self::$error = __( 'The plugin is not connected yet: enter the loyalty server URL, the store id and the widget secret first.', 'loyalty-for-woocommerce' );
			return;
		}
		$url = self::request_link();
		if ( is_wp_error( $url ) ) {
			self::$error = $url->get_error_message();
			return;
		}
		// The URL is checked (https, or http on localhost) before it gets here.
		wp_redirect( $url, 302, 'Loyalty for WooCommerce' ); // phpcs:ignore WordPress.Security.SafeRedirect.wp_redirect_wp_redirect -- the loyalty server is another host by design.
		exit;
	}

	/**
	 * Asks the server for a one-time sign-in link.
	 *
	 * @return string|WP_Error The URL, or why there is none.
	 */
	public static function request_link() {
		$settings = Loyalty_Settings::get();
		$server   = Loyalty_Settings::server_url();
		$body     = Loyalty_Identity::admin_request( $settings['widget_secret'], $settings['store_id'], time() );
		$response = wp_remote_post(
			Loyalty_Urls::admin_link_endpoint( $server ),
			array(
				'timeout'     => 10,
				'redirection' => 0,
				'headers'     => array(
					'Content-Type' => 'application/json',
					'Accept'       => 'application/json',
				),
				'body'        => wp_json_encode( $body ),
				'data_format' => 'body',
			)
		);
		if ( is_wp_error( $response ) ) {
			return new WP_Error(
				'loyalty_unreachable',
				/* translators: 1: the loyalty server URL, 2: the network error. */
				sprintf( __( 'The loyalty server at %1$s could not be reached: %2$s', 'loyalty-for-woocommerce' ), $server, $response->get_error_message() )
			);
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$answer = json_decode( (string) wp_remote_retrieve_body( $response ), true );
		if ( 200 !== $status ) {
			if ( 404 === $status ) {
				$message = __( 'The loyalty server does not offer admin sign-in links (HTTP 404). Update the server, or ask its operator for a link (loyalty admin-link).', 'loyalty-for-woocommerce' );
			} else {
				/* translators: %d: the HTTP status code. */
				$message = sprintf( __( 'The loyalty server refused the sign-in (HTTP %d).', 'loyalty-for-woocommerce' ), $status );
			}
			if ( is_array( $answer ) && isset( $answer['message'] ) && is_string( $answer['message'] ) ) {
				$message .= ' ' . $answer['message'];
			}
			if ( 401 === $status || 403 === $status ) {
				$message .= ' ' . __( 'Check the store id and the widget secret, and that this site\'s clock is right.', 'loyalty-for-woocommerce' );
			}
			return new WP_Error( 'loyalty_refused', $message );
		}
		$url = is_array( $answer ) && isset( $answer['url'] ) && is_string( $answer['url'] ) ? $answer['url'] : '';
		if ( '' === $url || ! Loyalty_Urls::is_allowed_redirect( $url ) ) {
			return new WP_Error( 'loyalty_bad_answer', __( 'The loyalty server answered without a usable sign-in link (an https URL was expected).', 'loyalty-for-woocommerce' ) );
		}
		return $url;
	}

	/**
	 * The page, seen only when the redirect did not happen: says why.
	 */
	public static function render(): void {
		if ( ! current_user_can( Loyalty_Settings::capability() ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage the loyalty program.', 'loyalty-for-woocommerce' ), 403 );
		}
		echo '<div class="wrap"><h1>' . esc_html__( 'Loyalty', 'loyalty-for-woocommerce' ) . '</h1>';
		$error = '' !== self::$error ? self::$error : __( 'The loyalty admin could not be opened.', 'loyalty-for-woocommerce' );
		echo '<div class="notice notice-error"><p>' . esc_html( $error ) . '</p></div>';
		echo '<p><a class="button button-primary" href="' . esc_url( admin_url( 'admin.php?page=' . self::PAGE ) ) . '">' . esc_html__( 'Try again', 'loyalty-for-woocommerce' ) . '</a> ';
		echo '<a class="button" href="' . esc_url( Loyalty_Settings::page_url() ) . '">' . esc_html__( 'Loyalty settings', 'loyalty-for-woocommerce' ) . '</a></p>';
		echo '</div>';
	}
}
