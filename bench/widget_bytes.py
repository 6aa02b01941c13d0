"""What the storefront widget weighs as the server serves it, against its budgets (DESIGN §10).

    python bench/widget_bytes.py [--json] [--svg docs/img/widget-bytes.svg]

Measured on the responses of a real app (Flask test client), gzip and brotli as negotiated.
The reference is DESIGN's figure for hosted loyalty widgets (~100 KB on first load).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from html import escape
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin_server import create_app
from plugin_server.widget_bundle import LANGUAGES

BUDGETS = {"loader": 5_000, "panel": 15_000, "catalog": 2_000}
HOSTED_WIDGET_BYTES = 100_000


def measure() -> dict[str, Any]:
    folder = tempfile.mkdtemp()
    app = create_app({"LOYALTY_ENV": "test", "DATABASE_URL": f"sqlite:///{folder}/b.sqlite3",
                      "SECRET_KEY": "bench", "ENCRYPTION_KEY": "bench"})
    client = app.test_client()

    def sizes(path: str) -> dict[str, int]:
        return {encoding or "identity": len(client.get(path, headers={
            "Accept-Encoding": encoding}).get_data()) for encoding in ("", "gzip", "br")}

    loader = client.get("/widget/loader.js", headers={"Accept-Encoding": ""}).get_data(
        as_text=True)
    files = {"loader": sizes("/widget/loader.js")}
    for match in re.finditer(r'"((?:panel|i18n/[\w-]+)\.[0-9a-f]{12}\.(?:js|json))"', loader):
        files[match.group(1).split(".")[0]] = sizes(f"/widget/{match.group(1)}")
    catalogs = {lang: files[f"i18n/{lang}"]["gzip"] for lang in LANGUAGES}
    first_load = files["loader"]["gzip"]
    opened = first_load + files["panel"]["gzip"] + max(catalogs.values())
    return {
        "files": files,
        "loader_gzip": first_load, "panel_gzip": files["panel"]["gzip"],
        "largest_catalog_gzip": max(catalogs.values()),
        "largest_catalog": max(catalogs, key=lambda lang: catalogs[lang]),
        "opened_gzip": opened, "budgets": BUDGETS,
        "hosted_widget_bytes": HOSTED_WIDGET_BYTES,
        "hosted_over_first_load": round(HOSTED_WIDGET_BYTES / first_load, 1),
        "hosted_over_opened": round(HOSTED_WIDGET_BYTES / opened, 1),
    }


def svg(result: dict[str, Any]) -> str:
    rows = [("loader (page load)", result["loader_gzip"], BUDGETS["loader"]),
            ("panel + styles (first open)", result["panel_gzip"], BUDGETS["panel"]),
            (f"largest catalog ({result['largest_catalog']})", result["largest_catalog_gzip"],
             BUDGETS["catalog"]),
            ("hosted widgets (DESIGN's figure)", HOSTED_WIDGET_BYTES, None)]
    width, label, bar, gap, top = 760, 250, 24, 14, 50
    scale = (width - label - 110) / HOSTED_WIDGET_BYTES
    height = top + len(rows) * (bar + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="t">',
             '<title id="t">Storefront widget bytes, gzip, as served</title>',
             '<rect width="100%" height="100%" fill="#fff"/>',
             '<text x="16" y="28" font-family="sans-serif" font-size="16" font-weight="bold">'
             'Storefront widget: gzip bytes as served (budget in red)</text>']
    for index, (name, value, budget) in enumerate(rows):
        y = top + index * (bar + gap)
        colour = "#8c959f" if budget is None else "#0b5cad"
        parts += [f'<text x="{label - 10}" y="{y + 17}" text-anchor="end" '
                  f'font-family="sans-serif" font-size="13">{escape(name)}</text>',
                  f'<rect x="{label}" y="{y}" width="{max(value * scale, 1):.1f}" '
                  f'height="{bar}" fill="{colour}"><title>{value:,} bytes</title></rect>',
                  f'<text x="{label + value * scale + 6:.1f}" y="{y + 17}" '
                  f'font-family="sans-serif" font-size="13">{value:,} B</text>']
        if budget is not None:
            x = label + budget * scale
            parts.append(f'<line x1="{x:.1f}" y1="{y - 3}" x2="{x:.1f}" y2="{y + bar + 3}" '
                         f'stroke="#cf222e" stroke-width="2"><title>budget {budget:,} bytes'
                         f'</title></line>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--svg", type=Path, help="also draw the chart to this file")
    args = parser.parse_args()
    result = measure()
    if args.svg:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(svg(result))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'file':<14}{'raw':>9}{'gzip':>9}{'brotli':>9}{'budget':>9}  verdict")
    for name, sizes in result["files"].items():
        kind = "catalog" if name.startswith("i18n/") else name
        budget = BUDGETS[kind]
        verdict = "pass" if sizes["gzip"] <= budget else "FAIL"
        print(f"{name:<14}{sizes['identity']:>9,}{sizes['gzip']:>9,}{sizes['br']:>9,}"
              f"{budget:>9,}  {verdict} ({sizes['gzip'] / budget:.2f} of budget)")
    print(f"first page load: {result['loader_gzip']:,} B gzip "
          f"({result['hosted_over_first_load']}x lighter than ~100 KB hosted widgets); "
          f"opened in the heaviest language: {result['opened_gzip']:,} B "
          f"({result['hosted_over_opened']}x lighter)")


if __name__ == "__main__":
    main()
