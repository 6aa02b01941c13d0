"""The storefront widget's sources (loader, panel, styles, language catalogs). This package
holds no Python logic: ``plugin_server.widget_bundle`` builds and serves these files."""

from pathlib import Path

WIDGET_DIR = Path(__file__).resolve().parent
