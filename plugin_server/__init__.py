"""The loyalty server: ``create_app`` builds the Flask app from settings (DESIGN.md §2)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from integrations.demo.discounts import disable_demo_code, issue_demo_code

from .config import load_settings
from .db import Database
from .runtime import Runtime
from .shopify.discounts import shopify_code_disabler, shopify_code_issuer
from .topics import build_batch_handlers, build_handlers
from .woocommerce.coupons import woocommerce_code_disabler, woocommerce_code_issuer

MAX_REQUEST_BYTES = 5 * 1024 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` overrides environment settings (tests pass their own)."""
    settings = load_settings(overrides=config)
    app = Flask(__name__)
    app.config.update(settings.as_flask_config())
    # No request body we accept is larger (a webhook's order is tens of KB); Werkzeug stops
    # reading at this size even without a Content-Length.
    app.config["MAX_CONTENT_LENGTH"] = app.config.get("MAX_CONTENT_LENGTH") or MAX_REQUEST_BYTES
    runtime = Runtime(
        settings=settings,
        database=Database(settings.DATABASE_URL),
        handlers=build_handlers(),
        batch_handlers=build_batch_handlers(),
        code_issuers={"demo": issue_demo_code},
        code_disablers={"demo": disable_demo_code},
    )
    runtime.code_issuers["shopify"] = shopify_code_issuer(runtime)
    runtime.code_issuers["woocommerce"] = woocommerce_code_issuer(runtime)
    runtime.code_disablers["shopify"] = shopify_code_disabler(runtime)
    runtime.code_disablers["woocommerce"] = woocommerce_code_disabler(runtime)
    app.extensions["loyalty"] = runtime
    logging.basicConfig(level=logging.INFO if settings.LOYALTY_ENV != "test" else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per outbound request is noise; failures are logged where they are handled.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if settings.PROXY_HOPS > 0:
        hops = settings.PROXY_HOPS
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from .web import register_web

    register_web(app)
    if settings.is_production:
        from .web.widget_assets import warm_widget

        warm_widget()
    from .cli import register_cli

    register_cli(app)
    return app
