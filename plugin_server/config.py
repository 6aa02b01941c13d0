"""Every setting the server reads from the environment, in one place (DESIGN.md §3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "test", "production")
INSTANCE_DIR = Path(os.environ.get("LOYALTY_INSTANCE_DIR", Path.cwd() / "instance"))
DEV_SECRET = "dev-secret-not-for-production"


class ConfigError(RuntimeError):
    """The server cannot start with these settings; the message names what to fix."""


@dataclass(frozen=True)
class Settings:
    LOYALTY_ENV: str = "development"
    SECRET_KEY: str = ""
    ENCRYPTION_KEY: str = ""
    DATABASE_URL: str = ""
    REDIS_URL: str = ""
    APP_URL: str = ""
    SHOPIFY_API_KEY: str = ""
    SHOPIFY_API_SECRET: str = ""
    SHOPIFY_API_SECRET_OLD: str = ""
    SHOPIFY_API_VERSION: str = "2026-01"
    SHOPIFY_ADMIN_URL_OVERRIDE: str = ""
    # How jobs run without Redis: "thread" (a background worker) or "eager" (right after commit).
    JOBS_MODE: str = "thread"
    SWEEP_INTERVAL_SECONDS: int = 60
    # A held redemption older than this is voided by the sweep (L7).
    REDEMPTION_HOLD_TIMEOUT_SECONDS: int = 300
    # Reverse proxies in front of the server (a platform router, a load balancer): their
    # X-Forwarded-For and -Proto are trusted, so per-address rate limits see the shopper.
    PROXY_HOPS: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.LOYALTY_ENV == "production"

    def as_flask_config(self) -> dict[str, Any]:
        values = {key: value for key, value in asdict(self).items() if key != "extra"}
        values.update(self.extra)
        return values


def _coerce(name: str, raw: str) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        try:
            return int(raw)
        except ValueError as error:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from error
    return raw


def load_settings(environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read settings from the environment, apply overrides, fill development defaults, and
    refuse what production must not run with."""
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}
    for name in known:
        if environ.get(name):
            values[name] = _coerce(name, environ[name])
    extra: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name in known:
            values[name] = value
        else:
            extra[name] = value
    settings = Settings(**values, extra=extra)
    if settings.LOYALTY_ENV not in ENVIRONMENTS:
        raise ConfigError(f"LOYALTY_ENV must be one of {', '.join(ENVIRONMENTS)}, "
                          f"got {settings.LOYALTY_ENV!r}")
    _check_ranges(settings)
    if settings.is_production:
        _check_production(settings)
        return settings
    defaults: dict[str, Any] = {}
    if not settings.SECRET_KEY:
        defaults["SECRET_KEY"] = DEV_SECRET
    if not settings.ENCRYPTION_KEY:
        defaults["ENCRYPTION_KEY"] = DEV_SECRET
    if not settings.APP_URL:
        defaults["APP_URL"] = "http://127.0.0.1:5000"
    if not settings.DATABASE_URL:
        defaults["DATABASE_URL"] = f"sqlite:///{INSTANCE_DIR / 'loyalty.sqlite3'}"
    if settings.LOYALTY_ENV == "test" and "JOBS_MODE" not in values:
        defaults["JOBS_MODE"] = "eager"
    return replace(settings, **defaults)


def _check_ranges(settings: Settings) -> None:
    if settings.JOBS_MODE not in ("thread", "eager"):
        raise ConfigError(f"JOBS_MODE must be thread or eager, got {settings.JOBS_MODE!r}")
    if settings.SWEEP_INTERVAL_SECONDS < 5:
        raise ConfigError("SWEEP_INTERVAL_SECONDS must be at least 5")
    if settings.REDEMPTION_HOLD_TIMEOUT_SECONDS < 30:
        raise ConfigError("REDEMPTION_HOLD_TIMEOUT_SECONDS must be at least 30: a platform call "
                          "can take that long")


def _check_production(settings: Settings) -> None:
    required = ("SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL", "APP_URL",
                "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET")
    missing = [name for name in required if not getattr(settings, name)]
    if missing:
        raise ConfigError("production needs these settings: " + ", ".join(missing))
    if settings.SHOPIFY_ADMIN_URL_OVERRIDE:
        raise ConfigError("SHOPIFY_ADMIN_URL_OVERRIDE is for tests and local fakes; "
                          "unset it in production")
    if settings.SECRET_KEY == DEV_SECRET or settings.ENCRYPTION_KEY == DEV_SECRET:
        raise ConfigError("production cannot use the development SECRET_KEY/ENCRYPTION_KEY")
