"""Builds the storefront widget from its readable sources, once per process: minify
(calmjs.parse for the ES5 scripts, renaming local names; rcssmin for the styles), name every
file but the loader by its content hash, and precompress (gzip and brotli). No Node is
involved; the sources in ``storefront_widget/`` are what we edit and review.

The loader's URL is fixed by the embed (``/widget/loader.js``), so it is the only asset that
can change under the same name; everything it loads is immutable under a hashed name."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import brotli
import rcssmin
from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print

from plugin_server.loyalty.widget_settings import LANGUAGES
from storefront_widget import WIDGET_DIR

__all__ = ["LANGUAGES", "Asset", "Bundle", "build"]

# The strings the loader needs before any catalog has loaded: the launcher's label and
# accessible name in every language; English ones for every other string the loader shows.
LOADER_KEYS = ("launcher", "points")
ENGLISH_LOADER_KEYS = ("earnProduct", "earnCart")
LOADER_NAME = "loader.js"
# The panel's sources in src/panel/: the frame, and the parts it runs inside mount(), in order.
PANEL_FRAME = "mount.js"
PANEL_PARTS = ("blocks.js", "dialog.js", "views.js", "redeem.js")
JS = "text/javascript; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    name: str
    content_type: str
    body: bytes
    gzipped: bytes
    brotli: bytes
    digest: str

    def encoded(self, encoding: str) -> bytes:
        return {"br": self.brotli, "gzip": self.gzipped}.get(encoding, self.body)


@dataclass(frozen=True)
class Bundle:
    assets: dict[str, Asset]
    signature: tuple[float, ...]

    @property
    def loader(self) -> Asset:
        return self.assets[LOADER_NAME]

    def named(self, prefix: str) -> Asset:
        """The hashed asset whose name starts with ``prefix`` (``panel.``, ``i18n/ja.``)."""
        return next(asset for name, asset in self.assets.items() if name.startswith(prefix))


def _asset(name: str, content_type: str, body: bytes) -> Asset:
    digest = hashlib.sha256(body).hexdigest()
    # mtime=0: the same bytes in every process, so ETags agree across workers.
    return Asset(name=name, content_type=content_type, body=body,
                 gzipped=gzip.compress(body, compresslevel=9, mtime=0),
                 brotli=brotli.compress(body, quality=11), digest=digest)


def _hashed(stem: str, extension: str, content_type: str, body: bytes) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:12]
    return _asset(f"{stem}.{digest}.{extension}", content_type, body)


def _compact_json(value: object) -> str:
    # "</" never appears raw inside the scripts we build, whatever a catalog holds.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def minify_js(source: str) -> str:
    """Minified ES5; local names shortened, globals (the page's API) kept. A syntax error
    in a source fails here, at build time, with its line."""
    return minify_print(es5(source), obfuscate=True, obfuscate_globals=False)


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        marker = f"__{key}__"
        if template.count(marker) != 1:
            raise ValueError(f"widget source must contain {marker} exactly once")
        template = template.replace(marker, value)
    return template


def panel_files(root: Path = WIDGET_DIR) -> list[Path]:
    return [root / "src" / "panel" / name for name in (PANEL_FRAME, *PANEL_PARTS)]


def panel_source(root: Path = WIDGET_DIR) -> str:
    """The panel as one script: the parts, joined in their order, inside the frame's mount()
    (one IIFE, one closure), its placeholders still to fill."""
    frame, *parts = (path.read_text("utf-8") for path in panel_files(root))
    return _fill(frame, PANEL_PARTS="\n".join(parts))


def source_files(root: Path = WIDGET_DIR) -> list[Path]:
    return [root / "src" / "loader.js", *panel_files(root), root / "src" / "panel.css",
            *(root / "i18n" / f"{lang}.json" for lang in LANGUAGES)]


def signature(root: Path = WIDGET_DIR) -> tuple[float, ...]:
    """Modification times of the sources: a development server rebuilds when they change."""
    return tuple(path.stat().st_mtime for path in source_files(root))


def build(root: Path = WIDGET_DIR) -> Bundle:
    catalogs = {lang: json.loads((root / "i18n" / f"{lang}.json").read_text("utf-8"))
                for lang in LANGUAGES}
    english = catalogs["en"]
    catalog_assets = {lang: _hashed(f"i18n/{lang}", "json", JSON_TYPE,
                                    _compact_json(catalog).encode())
                      for lang, catalog in catalogs.items()}
    css = rcssmin.cssmin((root / "src" / "panel.css").read_text("utf-8"))
    panel_js = _fill(panel_source(root), PANEL_CSS=_compact_json(css),
                     EN_CATALOG=_compact_json(english))
    panel = _hashed("panel", "js", JS, minify_js(panel_js).encode())
    manifest = {
        "panel": panel.name,
        "i18n": {lang: asset.name for lang, asset in catalog_assets.items()},
        "strings": {lang: {key: catalog[key] for key in LOADER_KEYS
                           + (ENGLISH_LOADER_KEYS if lang == "en" else ())}
                    for lang, catalog in catalogs.items()},
    }
    loader_source = _fill((root / "src" / "loader.js").read_text("utf-8"),
                          MANIFEST=_compact_json(manifest))
    loader = _asset(LOADER_NAME, JS, minify_js(loader_source).encode())
    assets = [*catalog_assets.values(), panel, loader]
    return Bundle(assets={asset.name: asset for asset in assets}, signature=signature(root))
