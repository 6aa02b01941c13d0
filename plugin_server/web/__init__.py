"""HTTP entry points: parse, call one service, map errors to status codes."""

from __future__ import annotations

from flask import Flask

from .admin import admin
from .admin_auth import admin_auth
from .admin_connection import admin_connection
from .admin_dashboard import admin_dashboard
from .admin_data import admin_data
from .admin_members import admin_members
from .admin_program import admin_program
from .errors import register_error_handlers
from .health import health
from .home import home
from .proxy import proxy
from .session import register_session
from .shopify_auth import shopify_auth
from .shopify_webhooks import shopify_webhooks
from .storefront_api import storefront_api
from .widget_assets import widget_assets
from .woocommerce_auth import woocommerce_auth
from .woocommerce_webhooks import woocommerce_webhooks


def register_web(app: Flask) -> None:
    register_session(app)
    register_error_handlers(app)
    app.register_blueprint(health)
    app.register_blueprint(home)
    app.register_blueprint(shopify_auth)
    app.register_blueprint(shopify_webhooks)
    app.register_blueprint(proxy)
    app.register_blueprint(storefront_api)
    app.register_blueprint(widget_assets)
    app.register_blueprint(woocommerce_auth)
    app.register_blueprint(woocommerce_webhooks)
    app.register_blueprint(admin_auth)
    app.register_blueprint(admin)
    app.register_blueprint(admin_dashboard)
    app.register_blueprint(admin_members)
    app.register_blueprint(admin_program)
    app.register_blueprint(admin_data)
    app.register_blueprint(admin_connection)
