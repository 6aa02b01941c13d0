<?php
/**
 * The signed shopper identity and the admin sign-in signature.
 *
 * Pure: nothing here calls WordPress, so the signature can be checked from the PHP command
 * line against the server's Python verifier (integrations/woocommerce/identity.py). The two
 * must agree byte for byte:
 *
 *   sig = lowercase hex HMAC-SHA256, keyed with the widget secret, of the UTF-8 text
 *         "store_id|customer_id|email|ts"          (the shopper identity)
 *         "admin|store_id|ts"                      (the admin sign-in request)
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Builds and signs what the plugin vouches for.
 */
final class Loyalty_Identity {

	/** The server refuses longer store and customer ids. */
	const MAX_ID_LENGTH = 64;

	/** The server refuses longer emails (in characters). */
	const MAX_EMAIL_LENGTH = 254;

	/** Joins the signed fields; ids must not contain it. */
	const SEPARATOR = '|';

	/**
	 * The identity signature: lowercase hex HMAC-SHA256 of "store_id|customer_id|email|ts".
	 *
	 * @param string $secret      The store's widget secret.
	 * @param string $store_id    The store id the server gave.
	 * @param string $customer_id The WordPress user id, as text.
	 * @param string $email       The customer's email (UTF-8).
	 * @param int    $ts          Unix seconds.
	 * @return string
	 */
	public static function signature( string $secret, string $store_id, string $customer_id, string $email, int $ts ): string {
		$message = implode( self::SEPARATOR, array( $store_id, $customer_id, $email, (string) $ts ) );
		return hash_hmac( 'sha256', $message, $secret );
	}

	/**
	 * The identity the storefront prints for a signed-in customer, or null when the server
	 * would refuse it anyway (then the widget treats the shopper as a guest).
	 *
	 * @param string     $secret      The store's widget secret.
	 * @param string|int $store_id    The store id.
	 * @param string|int $customer_id The WordPress user id.
	 * @param string     $email       The customer's email.
	 * @param int        $ts          Unix seconds (time()).
	 * @return array|null {"store_id", "customer_id", "email", "ts", "sig"}: ids as strings, ts an integer.
	 */
	public static function identity( string $secret, $store_id, $customer_id, string $email, int $ts ): ?array {
		$store    = (string) $store_id;
		$customer = (string) $customer_id;
		if ( '' === $secret || ! self::valid_id( $store ) || ! self::valid_id( $customer ) ) {
			return null;
		}
		$length = self::utf8_length( $email );
		if ( null === $length || $length > self::MAX_EMAIL_LENGTH ) {
			return null;
		}
		return array(
			'store_id'    => $store,
			'customer_id' => $customer,
			'email'       => $email,
			'ts'          => $ts,
			'sig'         => self::signature( $secret, $store, $customer, $email, $ts ),
		);
	}

	/**
	 * The admin sign-in signature: lowercase hex HMAC-SHA256 of "admin|store_id|ts".
	 *
	 * @param string $secret   The store's widget secret.
	 * @param string $store_id The store id.
	 * @param int    $ts       Unix seconds.
	 * @return string
	 */
	public static function admin_signature( string $secret, string $store_id, int $ts ): string {
		return hash_hmac( 'sha256', implode( self::SEPARATOR, array( 'admin', $store_id, (string) $ts ) ), $secret );
	}

	/**
	 * The JSON body of POST {server}/api/woocommerce/admin-link.
	 *
	 * @param string $secret   The store's widget secret.
	 * @param string $store_id The store id.
	 * @param int    $ts       Unix seconds (time()).
	 * @return array {"store_id", "ts", "sig"}
	 */
	public static function admin_request( string $secret, string $store_id, int $ts ): array {
		return array(
			'store_id' => $store_id,
			'ts'       => $ts,
			'sig'      => self::admin_signature( $secret, $store_id, $ts ),
		);
	}

	/**
	 * Whether the server would accept $value as a store or customer id.
	 *
	 * @param string $value The id.
	 * @return bool
	 */
	private static function valid_id( string $value ): bool {
		$length = self::utf8_length( $value );
		return null !== $length && $length >= 1 && $length <= self::MAX_ID_LENGTH
			&& false === strpos( $value, self::SEPARATOR );
	}

	/**
	 * Characters in a UTF-8 string (no mbstring needed), or null when it is not UTF-8.
	 *
	 * @param string $value The text.
	 * @return int|null
	 */
	private static function utf8_length( string $value ): ?int {
		if ( '' === $value ) {
			return 0;
		}
		$count = preg_match_all( '/./su', $value );
		return false === $count ? null : $count;
	}
}
