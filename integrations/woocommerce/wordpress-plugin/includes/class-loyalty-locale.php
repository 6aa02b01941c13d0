<?php
/**
 * WordPress locales to the widget's language codes.
 *
 * Pure (no WordPress call): tested from the PHP command line.
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Picks the widget language for a WordPress locale, the way the widget itself falls back:
 * the exact language and region, else the language, else English; Traditional Chinese gets
 * English rather than the Simplified catalog.
 */
final class Loyalty_Locale {

	/** The languages the widget ships (README "Storefront widget"). */
	const WIDGET_LANGUAGES = array( 'en', 'ja', 'vi', 'te', 'hy', 'es', 'fr', 'de', 'pt-BR', 'zh-CN', 'hi', 'ar' );

	/**
	 * The widget's code for a WordPress locale: pt_BR → pt-BR, zh_CN → zh-CN, de_DE → de,
	 * de_DE_formal → de, es_MX → es, it_IT → en.
	 *
	 * @param string $locale A WordPress locale (determine_locale()).
	 * @return string One of WIDGET_LANGUAGES.
	 */
	public static function widget_locale( string $locale ): string {
		$parts    = explode( '_', strtolower( str_replace( '-', '_', trim( $locale ) ) ) );
		$language = $parts[0];
		$region   = isset( $parts[1] ) ? $parts[1] : '';
		if ( 'zh' === $language && in_array( $region, array( 'hant', 'tw', 'hk', 'mo' ), true ) ) {
			return 'en';
		}
		$exact = '' === $region ? $language : $language . '-' . $region;
		foreach ( self::WIDGET_LANGUAGES as $code ) {
			if ( strtolower( $code ) === $exact ) {
				return $code;
			}
		}
		foreach ( self::WIDGET_LANGUAGES as $code ) {
			if ( strtolower( explode( '-', $code )[0] ) === $language ) {
				return $code;
			}
		}
		return 'en';
	}
}
