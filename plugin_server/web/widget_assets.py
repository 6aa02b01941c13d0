"""``GET /widget/loader.js`` and the hashed files it loads. The loader keeps its URL (the embed
names it), so caches revalidate it with its ETag; every other file is named by its content
hash and cached for a year as immutable. Each answer is the smallest encoding the browser
accepts (brotli, gzip or none), prepared once per process."""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app, request

from plugin_server import widget_bundle
from plugin_server.widget_bundle import Asset, Bundle

widget_assets = Blueprint("widget_assets", __name__, url_prefix="/widget")

# Short: a loader cached long after a deploy would name panel files no longer served.
LOADER_CACHE = "public, max-age=300, stale-while-revalidate=300"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
_lock = threading.Lock()
_built: Bundle | None = None


def _bundle(reloading: bool) -> Bundle:
    global _built
    with _lock:
        stale = _built is None or (reloading and _built.signature != widget_bundle.signature())
        if stale:
            _built = widget_bundle.build()
        assert _built is not None
        return _built


def current_bundle() -> Bundle:
    """The built widget. In development (LOYALTY_ENV or Flask's debug) a changed source is
    rebuilt on the next request."""
    return _bundle(current_app.debug or current_app.config.get("LOYALTY_ENV") == "development")


def warm_widget() -> None:
    """Build now, in the background, so a production worker's first shopper does not wait
    the half second the build takes."""
    threading.Thread(target=_bundle, args=(False,), name="widget-build", daemon=True).start()


def _encoding() -> str:
    accepted = request.accept_encodings
    for encoding in ("br", "gzip"):
        if accepted.quality(encoding) > 0:
            return encoding
    return "identity"


def _serve(asset: Asset, cache_control: str) -> Response:
    encoding = _encoding()
    response = Response(asset.encoded(encoding), content_type=asset.content_type)
    if encoding != "identity":
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = cache_control
    # Stores load these from another origin: allow it under COEP and for fetch().
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # One representation per encoding, so one ETag per encoding.
    response.set_etag(f"{asset.digest[:20]}-{encoding}")
    return response.make_conditional(request)


@widget_assets.get("/loader.js")
def loader() -> Response:
    return _serve(current_bundle().loader, LOADER_CACHE)


@widget_assets.get("/<path:name>")
def hashed_asset(name: str) -> Response | tuple[str, int]:
    asset = current_bundle().assets.get(name)
    if asset is None or name == widget_bundle.LOADER_NAME:
        return "no such widget file\n", 404
    return _serve(asset, IMMUTABLE_CACHE)
