<?php
/**
 * The loyalty server's addresses, and which addresses the plugin will use.
 *
 * Pure (no WordPress call): tested from the PHP command line.
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Server URLs must be https, except on this machine (http://localhost for development).
 */
final class Loyalty_Urls {

	/**
	 * Whether $host names this machine: localhost, *.localhost, 127.0.0.0/8 or ::1.
	 *
	 * @param string $host A URL's host (lowercase, IPv6 in brackets or not).
	 * @return bool
	 */
	public static function is_local_host( string $host ): bool {
		$host = strtolower( trim( $host, '[]' ) );
		return 'localhost' === $host
			|| '::1' === $host
			|| '.localhost' === substr( $host, -10 )
			|| 1 === preg_match( '/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/', $host );
	}

	/**
	 * The server URL as the plugin stores it ("https://host[:port][/path]", no trailing
	 * slash), or null when it is not https (http only for localhost), carries credentials,
	 * a query or a fragment, or has an unusual host.
	 *
	 * @param string $url What the merchant typed.
	 * @return string|null
	 */
	public static function normalize_server( string $url ): ?string {
		$parts = self::parts( trim( $url ) );
		if ( null === $parts || isset( $parts['query'] ) || isset( $parts['fragment'] ) ) {
			return null;
		}
		$port = isset( $parts['port'] ) ? ':' . (int) $parts['port'] : '';
		$path = isset( $parts['path'] ) ? rtrim( $parts['path'], '/' ) : '';
		return $parts['scheme'] . '://' . $parts['host'] . $port . $path;
	}

	/**
	 * Whether the plugin may send the merchant's browser to $url: https, or http on localhost.
	 *
	 * @param string $url An address the server answered with.
	 * @return bool
	 */
	public static function is_allowed_redirect( string $url ): bool {
		return null !== self::parts( $url );
	}

	/**
	 * Where the settings page's Connect button goes.
	 *
	 * @param string $server    The stored server URL.
	 * @param string $store_url The store's home URL (home_url()).
	 * @return string
	 */
	public static function connect_url( string $server, string $store_url ): string {
		return $server . '/woocommerce/connect?store_url=' . rawurlencode( $store_url );
	}

	/**
	 * The widget loader.
	 *
	 * @param string $server The stored server URL.
	 * @return string
	 */
	public static function loader_url( string $server ): string {
		return $server . '/widget/loader.js';
	}

	/**
	 * Where the widget finds program, me and redeem on WooCommerce.
	 *
	 * @param string $server The stored server URL.
	 * @return string
	 */
	public static function api_base( string $server ): string {
		return $server . '/api/storefront';
	}

	/**
	 * Where the "Loyalty" menu asks for a one-time admin sign-in link.
	 *
	 * @param string $server The stored server URL.
	 * @return string
	 */
	public static function admin_link_endpoint( string $server ): string {
		return $server . '/api/woocommerce/admin-link';
	}

	/**
	 * A URL's parts with scheme and host lowercased, or null unless it is an absolute
	 * https URL (http on localhost) without user info, spaces or control characters.
	 *
	 * @param string $url The URL.
	 * @return array|null
	 */
	private static function parts( string $url ): ?array {
		if ( '' === $url || 1 === preg_match( '/[\s\x00-\x1f\x7f\\\\]/', $url ) ) {
			return null;
		}
		$parts = parse_url( $url ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- pure, no WordPress here.
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] )
			|| isset( $parts['user'] ) || isset( $parts['pass'] ) ) {
			return null;
		}
		$parts['scheme'] = strtolower( $parts['scheme'] );
		$parts['host']   = strtolower( $parts['host'] );
		if ( 1 !== preg_match( '/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/', $parts['host'] ) ) {
			return null;
		}
		$secure = 'https' === $parts['scheme'];
		$local  = 'http' === $parts['scheme'] && self::is_local_host( $parts['host'] );
		return $secure || $local ? $parts : null;
	}
}
