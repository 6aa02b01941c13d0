<?php
/**
 * Uninstall: deletes the plugin's own option and user meta, nothing else (the loyalty
 * server keeps the program; disconnect the store there).
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;
defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

$loyalty_wc_options   = array( 'loyalty_wc_settings' );
$loyalty_wc_user_meta = array( 'loyalty_wc_setup_notice_dismissed' );

if ( is_multisite() ) {
	foreach ( get_sites(
		array(
			'fields' => 'ids',
			'number' => 0,
		)
	) as $loyalty_wc_site_id ) {
		switch_to_blog( (int) $loyalty_wc_site_id );
		foreach ( $loyalty_wc_options as $loyalty_wc_option ) {
			delete_option( $loyalty_wc_option );
		}
		restore_current_blog();
	}
} else {
	foreach ( $loyalty_wc_options as $loyalty_wc_option ) {
		delete_option( $loyalty_wc_option );
	}
}

// User meta is shared by every site of a network: delete it once, for every user.
foreach ( $loyalty_wc_user_meta as $loyalty_wc_key ) {
	delete_metadata( 'user', 0, $loyalty_wc_key, '', true );
}
