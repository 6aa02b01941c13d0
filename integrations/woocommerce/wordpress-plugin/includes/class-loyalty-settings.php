<?php
/**
 * The settings page: server URL, store id, widget secret, and the Connect button.
 *
 * @package LoyaltyForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Stores the connection in one option with the Settings API (options.php checks the nonce
 * that settings_fields() prints and the capability below).
 */
final class Loyalty_Settings {

	/** The option holding server_url, store_id and widget_secret. */
	const OPTION = 'loyalty_wc_settings';

	/** The Settings API group. */
	const GROUP = 'loyalty_wc';

	/** The settings page slug. */
	const PAGE = 'loyalty-wc-settings';

	/** Store ids are short and plain (the server makes 16 hex digits). */
	const STORE_ID_PATTERN = '/^[A-Za-z0-9._-]{1,64}$/';

	/** Widget secrets are printable ASCII without spaces (the server makes 40 letters and digits). */
	const SECRET_PATTERN = '/^[\x21-\x7e]{16,256}$/';

	/**
	 * Hooks the page and the setting.
	 */
	public static function init(): void {
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_action( 'admin_init', array( __CLASS__, 'register' ) );
		add_filter( 'option_page_capability_' . self::GROUP, array( __CLASS__, 'capability' ) );
	}

	/**
	 * Who may change the connection: shop managers when WooCommerce is active, else admins.
	 *
	 * @return string
	 */
	public static function capability(): string {
		return class_exists( 'WooCommerce' ) ? 'manage_woocommerce' : 'manage_options';
	}

	/**
	 * The settings page's address (under WooCommerce, or under Settings without it).
	 *
	 * @return string
	 */
	public static function page_url(): string {
		$parent = class_exists( 'WooCommerce' ) ? 'admin.php' : 'options-general.php';
		return admin_url( $parent . '?page=' . self::PAGE );
	}

	/**
	 * The stored settings, with every key present.
	 *
	 * @return array{server_url: string, store_id: string, widget_secret: string}
	 */
	public static function get(): array {
		$stored   = get_option( self::OPTION, array() );
		$defaults = array(
			'server_url'    => '',
			'store_id'      => '',
			'widget_secret' => '',
		);
		if ( ! is_array( $stored ) ) {
			return $defaults;
		}
		foreach ( $defaults as $key => $default ) {
			if ( isset( $stored[ $key ] ) && is_string( $stored[ $key ] ) ) {
				$defaults[ $key ] = $stored[ $key ];
			}
		}
		return $defaults;
	}

	/**
	 * The server URL, normalized; '' when unset or unusable.
	 *
	 * @return string
	 */
	public static function server_url(): string {
		$server = Loyalty_Urls::normalize_server( self::get()['server_url'] );
		return null === $server ? '' : $server;
	}

	/**
	 * Whether the storefront and the admin link can work: all three values are set.
	 *
	 * @return bool
	 */
	public static function is_configured(): bool {
		$settings = self::get();
		return '' !== self::server_url() && '' !== $settings['store_id'] && '' !== $settings['widget_secret'];
	}

	/**
	 * Adds the page under WooCommerce (under Settings when WooCommerce is inactive).
	 */
	public static function add_page(): void {
		$title = __( 'Loyalty', 'loyalty-for-woocommerce' );
		if ( class_exists( 'WooCommerce' ) ) {
			add_submenu_page( 'woocommerce', $title, $title, self::capability(), self::PAGE, array( __CLASS__, 'render' ) );
		} else {
			add_options_page( $title, $title, self::capability(), self::PAGE, array( __CLASS__, 'render' ) );
		}
	}

	/**
	 * Registers the option, its section and fields.
	 */
	public static function register(): void {
		register_setting(
			self::GROUP,
			self::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( __CLASS__, 'sanitize' ),
				'default'           => array(),
				'show_in_rest'      => false,
			)
		);
		add_settings_section( 'loyalty_wc_connection', __( 'Connection', 'loyalty-for-woocommerce' ), array( __CLASS__, 'render_section' ), self::PAGE );
		add_settings_field(
			'loyalty_wc_server_url',
			__( 'Loyalty server URL', 'loyalty-for-woocommerce' ),
			array( __CLASS__, 'render_server_url' ),
			self::PAGE,
			'loyalty_wc_connection',
			array( 'label_for' => 'loyalty_wc_server_url' )
		);
		add_settings_field(
			'loyalty_wc_store_id',
			__( 'Store id', 'loyalty-for-woocommerce' ),
			array( __CLASS__, 'render_store_id' ),
			self::PAGE,
			'loyalty_wc_connection',
			array( 'label_for' => 'loyalty_wc_store_id' )
		);
		add_settings_field(
			'loyalty_wc_widget_secret',
			__( 'Widget secret', 'loyalty-for-woocommerce' ),
			array( __CLASS__, 'render_widget_secret' ),
			self::PAGE,
			'loyalty_wc_connection',
			array( 'label_for' => 'loyalty_wc_widget_secret' )
		);
	}

	/**
	 * Cleans what the form sent. A value that fails its check keeps the stored one and says
	 * why; an empty secret field keeps the stored secret (it is never printed back).
	 *
	 * @param mixed $input The submitted array (options.php has unslashed it).
	 * @return array
	 */
	public static function sanitize( $input ): array {
		$clean = self::get();
		if ( ! is_array( $input ) ) {
			return $clean;
		}

		$server = isset( $input['server_url'] ) && is_string( $input['server_url'] ) ? trim( $input['server_url'] ) : '';
		if ( '' === $server ) {
			$clean['server_url'] = '';
		} else {
			$normalized = Loyalty_Urls::normalize_server( $server );
			if ( null === $normalized ) {
				add_settings_error( self::OPTION, 'loyalty_wc_server_url', __( 'The loyalty server URL must start with https:// (http:// only for localhost) and have no query or fragment. The previous value was kept.', 'loyalty-for-woocommerce' ) );
			} else {
				$clean['server_url'] = esc_url_raw( $normalized, array( 'https', 'http' ) );
			}
		}

		$store_id = isset( $input['store_id'] ) && is_string( $input['store_id'] ) ? sanitize_text_field( $input['store_id'] ) : '';
		if ( '' === $store_id || 1 === preg_match( self::STORE_ID_PATTERN, $store_id ) ) {
			$clean['store_id'] = $store_id;
		} else {
			add_settings_error( self::OPTION, 'loyalty_wc_store_id', __( 'The store id is up to 64 letters, digits, dots, dashes or underscores, as the loyalty server showed it. The previous value was kept.', 'loyalty-for-woocommerce' ) );
		}

		$secret = isset( $input['widget_secret'] ) && is_string( $input['widget_secret'] ) ? trim( $input['widget_secret'] ) : '';
		if ( '' !== $secret ) {
			if ( 1 === preg_match( self::SECRET_PATTERN, $secret ) ) {
				$clean['widget_secret'] = $secret;
			} else {
				add_settings_error( self::OPTION, 'loyalty_wc_widget_secret', __( 'The widget secret is 16 to 256 characters without spaces, as the loyalty server showed it. The previous secret was kept.', 'loyalty-for-woocommerce' ) );
			}
		}
		return $clean;
	}

	/**
	 * The section's explanation.
	 */
	public static function render_section(): void {
		echo '<p>' . esc_html__( 'Enter the address of your loyalty server and save, then press Connect and approve on WooCommerce. The server then shows a store id and a widget secret: paste both here and save again.', 'loyalty-for-woocommerce' ) . '</p>';
	}

	/**
	 * The server URL field.
	 */
	public static function render_server_url(): void {
		printf(
			'<input type="url" id="loyalty_wc_server_url" name="%1$s[server_url]" value="%2$s" class="regular-text code" placeholder="https://loyalty.example.com" />',
			esc_attr( self::OPTION ),
			esc_attr( self::get()['server_url'] )
		);
		echo '<p class="description">' . esc_html__( 'https:// is required, except for http://localhost while developing.', 'loyalty-for-woocommerce' ) . '</p>';
	}

	/**
	 * The store id field.
	 */
	public static function render_store_id(): void {
		printf(
			'<input type="text" id="loyalty_wc_store_id" name="%1$s[store_id]" value="%2$s" class="regular-text code" autocomplete="off" spellcheck="false" />',
			esc_attr( self::OPTION ),
			esc_attr( self::get()['store_id'] )
		);
	}

	/**
	 * The widget secret field: a password field that never shows the stored secret.
	 */
	public static function render_widget_secret(): void {
		printf(
			'<input type="password" id="loyalty_wc_widget_secret" name="%1$s[widget_secret]" value="" class="regular-text code" autocomplete="new-password" spellcheck="false" />',
			esc_attr( self::OPTION )
		);
		$saved = '' !== self::get()['widget_secret'];
		$note  = $saved
			? __( 'A secret is saved. Leave the field empty to keep it, or paste a new one to replace it.', 'loyalty-for-woocommerce' )
			: __( 'No secret is saved yet.', 'loyalty-for-woocommerce' );
		echo '<p class="description">' . esc_html( $note ) . '</p>';
	}

	/**
	 * The page: the settings form, then the Connect button.
	 */
	public static function render(): void {
		if ( ! current_user_can( self::capability() ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage the loyalty program.', 'loyalty-for-woocommerce' ), 403 );
		}
		$server = self::server_url();
		echo '<div class="wrap"><h1>' . esc_html__( 'Loyalty', 'loyalty-for-woocommerce' ) . '</h1>';
		if ( class_exists( 'WooCommerce' ) ) {
			// Pages under Settings print these themselves; elsewhere the page must.
			settings_errors();
		}
		echo '<form method="post" action="' . esc_url( admin_url( 'options.php' ) ) . '">';
		settings_fields( self::GROUP );
		do_settings_sections( self::PAGE );
		submit_button();
		echo '</form>';

		echo '<h2>' . esc_html__( 'Connect the store', 'loyalty-for-woocommerce' ) . '</h2>';
		if ( '' === $server ) {
			echo '<p>' . esc_html__( 'Save the loyalty server URL first.', 'loyalty-for-woocommerce' ) . '</p>';
		} else {
			echo '<p>' . esc_html__( 'Connect sends you to the loyalty server, which asks WooCommerce for API access to this store. Approve, then paste the store id and widget secret it shows.', 'loyalty-for-woocommerce' ) . '</p>';
			echo '<p><a class="button button-primary" href="' . esc_url( Loyalty_Urls::connect_url( $server, home_url() ) ) . '">' . esc_html__( 'Connect', 'loyalty-for-woocommerce' ) . '</a></p>';
		}
		if ( self::is_configured() ) {
			echo '<p>' . esc_html__( 'The storefront widget is on: shoppers see it on every page.', 'loyalty-for-woocommerce' ) . '</p>';
		}
		echo '</div>';
	}
}
