<?php
/**
 * Test helper (command line only): signs with the plugin's own code, outside WordPress.
 *
 *   echo '{"secret": "…", "store_id": "…", "customer_id": "…", "email": "…", "ts": 1700000000}' \
 *     | php tests/sign.php            → the identity JSON (or null when it would be refused)
 *   … | php tests/sign.php admin      → the admin sign-in request JSON {"store_id", "ts", "sig"}
 *
 * Input comes as JSON on stdin so that any UTF-8 reaches PHP unchanged.
 *
 * @package LoyaltyForWooCommerce
 */

if ( PHP_SAPI !== 'cli' ) {
	exit;
}
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ );
}
require_once dirname( __DIR__ ) . '/includes/class-loyalty-identity.php';

$loyalty_wc_input = json_decode( (string) stream_get_contents( STDIN ), true );
if ( ! is_array( $loyalty_wc_input ) ) {
	fwrite( STDERR, "sign.php: expected a JSON object on stdin\n" );
	exit( 2 );
}
$loyalty_wc_mode = isset( $argv[1] ) ? $argv[1] : 'identity';
if ( 'admin' === $loyalty_wc_mode ) {
	$loyalty_wc_output = Loyalty_Identity::admin_request( (string) $loyalty_wc_input['secret'], (string) $loyalty_wc_input['store_id'], (int) $loyalty_wc_input['ts'] );
} else {
	$loyalty_wc_output = Loyalty_Identity::identity(
		(string) $loyalty_wc_input['secret'],
		$loyalty_wc_input['store_id'],
		$loyalty_wc_input['customer_id'],
		(string) $loyalty_wc_input['email'],
		(int) $loyalty_wc_input['ts']
	);
}
echo json_encode( $loyalty_wc_output ) . "\n"; // phpcs:ignore -- command-line JSON, not HTML.
