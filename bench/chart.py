"""Draw a benchmark's JSON result as a small SVG bar chart (no plotting library needed).

    python bench/order_processing.py --json > /tmp/result.json
    python bench/chart.py /tmp/result.json docs/img/order-processing.svg
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

WIDTH, BAR_HEIGHT, GAP, LABEL_WIDTH, TOP = 760, 26, 12, 300, 56
COLOURS = {"product": "#0b5cad", "baseline": "#8c959f", "budget": "#cf222e"}


def bars(result: dict[str, float]) -> list[tuple[str, float, str]]:
    rows = [
        ("product, burst path (200 a transaction)", result["product_orders_per_s"], "product"),
        ("raw sqlite3, 200 a transaction", result["raw_orders_per_s"], "baseline"),
        ("raw sqlite3, 1 a transaction", result["raw_one_per_txn_orders_per_s"], "baseline"),
    ]
    if result.get("single_orders_per_s"):
        rows.insert(1, ("product, one delivery a transaction", result["single_orders_per_s"],
                        "product"))
    return rows


def svg(result: dict[str, float]) -> str:
    rows = bars(result)
    top = max(value for _, value, _ in rows)
    scale = (WIDTH - LABEL_WIDTH - 90) / top
    height = TOP + len(rows) * (BAR_HEIGHT + GAP) + 40
    budget_x = LABEL_WIDTH + result["budget_orders_per_s"] * scale
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="title">',
        '<title id="title">Order processing throughput, orders per second (higher is '
        'better)</title>',
        '<style>text{font:13px system-ui,sans-serif;fill:#1b1f24}.v{font-weight:600}</style>',
        '<text x="0" y="20" style="font-size:16px;font-weight:600">Order processing, '
        'inbox to points and tiers (SQLite, orders/s)</text>',
        f'<text x="0" y="40">{int(result["orders_measured"]):,} paid orders from '
        f'{int(result["shoppers"]):,} shoppers, one run</text>',
    ]
    for index, (label, value, kind) in enumerate(rows):
        y = TOP + index * (BAR_HEIGHT + GAP)
        width = max(value * scale, 1)
        parts += [
            f'<text x="0" y="{y + 18}">{escape(label)}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{COLOURS[kind]}"><title>{escape(label)}: {value:,.0f} orders/s</title></rect>',
            f'<text class="v" x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 18}">{value:,.0f}</text>',
        ]
    bottom = TOP + len(rows) * (BAR_HEIGHT + GAP)
    parts += [
        f'<line x1="{budget_x:.1f}" x2="{budget_x:.1f}" y1="{TOP - 6}" y2="{bottom}" '
        f'stroke="{COLOURS["budget"]}" stroke-dasharray="4 3"/>',
        f'<text x="{budget_x + 4:.1f}" y="{bottom + 16}" style="fill:{COLOURS["budget"]}">'
        f'budget {result["budget_orders_per_s"]:,.0f}/s</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def write_chart(render: Callable[[dict[str, Any]], str]) -> None:
    """``python bench/<chart>.py RESULT.json OUT.svg``: render a bench's JSON result."""
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    result = json.loads(source.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(result))
    print(f"wrote {target}")


def main() -> None:
    write_chart(svg)


if __name__ == "__main__":
    main()
