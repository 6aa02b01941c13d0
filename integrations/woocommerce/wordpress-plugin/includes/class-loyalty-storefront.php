<?php
/**
 * The storefront: the widget's script tag (with the signed shopper identity) and the
 * "points you'll earn" lines on product pages and the cart.
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Prints the embed of DESIGN §9:
 * <script src="{server}/widget/loader.js" defer data-platform="woocommerce" data-shop=…
 *   data-customer-id=… data-locale=… data-currency=… data-api-base=… [data-identity=…]>
 */
final class Loyalty_Storefront {

	/** The loader's script handle (WordPress prints it with id="loyalty-widget-js"). */
	const HANDLE = 'loyalty-widget';

	/** The product page helper that follows the chosen variation's price. */
	const PRODUCT_HANDLE = 'loyalty-wc-product';

	/**
	 * Hooks the storefront.
	 */
	public static function init(): void {
		add_action( 'wp_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
		add_filter( 'script_loader_tag', array( __CLASS__, 'filter_tag' ), 10, 2 );
		// The price prints at priority 10.
		add_action( 'woocommerce_single_product_summary', array( __CLASS__, 'product_line' ), 11 );
		// Inside .cart_totals, which WooCommerce redraws (with a fresh total) when the cart changes.
		add_action( 'woocommerce_after_cart_totals', array( __CLASS__, 'cart_line' ) );
		add_filter( 'woocommerce_available_variation', array( __CLASS__, 'variation_price' ), 10, 3 );
	}

	/**
	 * Enqueues the loader (deferred) on every storefront page once the plugin is configured.
	 */
	public static function enqueue(): void {
		if ( ! Loyalty_Settings::is_configured() ) {
			return;
		}
		// WordPress 6.3+ knows loading strategies; older versions get defer from filter_tag().
		$args = version_compare( get_bloginfo( 'version' ), '6.3', '>=' )
			? array(
				'strategy'  => 'defer',
				'in_footer' => false,
			)
			: false;
		// The loader is versioned by the server: no ?ver= of ours.
		wp_enqueue_script( self::HANDLE, Loyalty_Urls::loader_url( Loyalty_Settings::server_url() ), array(), null, $args ); // phpcs:ignore WordPress.WP.EnqueuedResourceParameters.MissingVersion
		if ( function_exists( 'is_product' ) && is_product() ) {
			wp_enqueue_script( self::PRODUCT_HANDLE, LOYALTY_WC_URL . 'assets/product.js', array( 'jquery' ), LOYALTY_WC_VERSION, true );
		}
	}

	/**
	 * The loader's data attributes, unescaped.
	 *
	 * @return array<string, string>
	 */
	public static function attributes(): array {
		$settings   = Loyalty_Settings::get();
		$server     = Loyalty_Settings::server_url();
		$user_id    = get_current_user_id();
		$attributes = array(
			'data-platform'    => 'woocommerce',
			'data-shop'        => $settings['store_id'],
			'data-customer-id' => $user_id ? (string) $user_id : '',
			'data-locale'      => Loyalty_Locale::widget_locale( determine_locale() ),
			'data-currency'    => function_exists( 'get_woocommerce_currency' ) ? get_woocommerce_currency() : '',
			'data-api-base'    => Loyalty_Urls::api_base( $server ),
		);
		if ( $user_id ) {
			$user     = wp_get_current_user();
			$identity = Loyalty_Identity::identity( $settings['widget_secret'], $settings['store_id'], $user_id, (string) $user->user_email, time() );
			if ( null !== $identity ) {
				$attributes['data-identity'] = self::identity_json( $identity );
			}
		}
		return $attributes;
	}

	/**
	 * The identity as JSON text for data-identity. The hex flags keep &, <, >, ' and " inside
	 * strings out of the text, so esc_attr() (which leaves entity-like text such as "&amp;"
	 * alone) can never change what the browser reads back.
	 *
	 * @param array $identity Loyalty_Identity::identity().
	 * @return string
	 */
	public static function identity_json( array $identity ): string {
		return (string) wp_json_encode( $identity, JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT );
	}

	/**
	 * The attributes as HTML, each value escaped with esc_attr().
	 *
	 * @param array<string, string> $attributes Name => unescaped value.
	 * @return string ' name="value"…'
	 */
	public static function attributes_html( array $attributes ): string {
		$html = '';
		foreach ( $attributes as $name => $value ) {
			$html .= ' ' . preg_replace( '/[^a-z0-9-]/', '', strtolower( (string) $name ) ) . '="' . esc_attr( $value ) . '"';
		}
		return $html;
	}

	/**
	 * Adds the data attributes (and defer, before WordPress 6.3) to the loader's tag.
	 *
	 * @param string $tag    The HTML WordPress prints for the handle.
	 * @param string $handle The script handle.
	 * @return string
	 */
	public static function filter_tag( $tag, $handle ) {
		if ( self::HANDLE !== $handle || ! is_string( $tag ) || ! Loyalty_Settings::is_configured() ) {
			return $tag;
		}
		return self::add_to_tag( $tag, self::HANDLE . '-js', self::attributes_html( self::attributes() ) );
	}

	/**
	 * Inserts $attributes_html (already escaped) into the opening <script> tag whose id is
	 * $id, adding defer if it is not there. Inline scripts around it are left alone. Pure.
	 *
	 * @param string $tag             The HTML of the script and any inline scripts around it.
	 * @param string $id              The script element's id.
	 * @param string $attributes_html Escaped attributes, each with a leading space.
	 * @return string
	 */
	public static function add_to_tag( string $tag, string $id, string $attributes_html ): string {
		$pattern = '/<script\b([^>]*\sid=(["\'])' . preg_quote( $id, '/' ) . '\2[^>]*)>/';
		return (string) preg_replace_callback(
			$pattern,
			static function ( array $match ) use ( $attributes_html ): string {
				$own   = $match[1];
				$defer = 1 === preg_match( '/\sdefer(?=[\s=\/]|$)/', $own ) ? '' : ' defer';
				return '<script' . $own . $defer . $attributes_html . '>';
			},
			$tag,
			1
		);
	}

	/**
	 * The price a product earns on, as WooCommerce's decimal text: excluding tax, like the
	 * order lines points are awarded on. Null when the product has no price, or is sold
	 * elsewhere (external products earn nothing here).
	 *
	 * @param WC_Product $product The product (or variation).
	 * @return string|null
	 */
	public static function earn_price( $product ): ?string {
		if ( ! ( $product instanceof WC_Product ) || $product->is_type( 'external' ) || '' === (string) $product->get_price() ) {
			return null;
		}
		return wc_format_decimal( wc_get_price_excluding_tax( $product ), wc_get_price_decimals() );
	}

	/**
	 * "Points you'll earn" under the product's price; the widget fills it in.
	 */
	public static function product_line(): void {
		global $product;
		if ( ! Loyalty_Settings::is_configured() || ! ( $product instanceof WC_Product ) ) {
			return;
		}
		$price = self::earn_price( $product );
		if ( null !== $price ) {
			echo '<p class="loyalty-earn" data-loyalty-earn data-price="' . esc_attr( $price ) . '"></p>';
		}
	}

	/**
	 * "Points you'll earn" on the cart: the items after discounts, without shipping or tax.
	 */
	public static function cart_line(): void {
		if ( ! Loyalty_Settings::is_configured() || ! function_exists( 'WC' ) || ! WC()->cart ) {
			return;
		}
		$total = wc_format_decimal( WC()->cart->get_cart_contents_total(), wc_get_price_decimals() );
		echo '<p class="loyalty-earn" data-loyalty-earn="cart" data-price="' . esc_attr( $total ) . '"></p>';
	}

	/**
	 * Gives each variation its earn price, for assets/product.js.
	 *
	 * @param array      $data      The variation's data for the product form.
	 * @param WC_Product $product   The variable product.
	 * @param WC_Product $variation The variation.
	 * @return array
	 */
	public static function variation_price( $data, $product, $variation ) {
		if ( is_array( $data ) && Loyalty_Settings::is_configured() ) {
			$price = self::earn_price( $variation );
			if ( null !== $price ) {
				$data['loyalty_earn_price'] = $price;
			}
		}
		return $data;
	}
}
