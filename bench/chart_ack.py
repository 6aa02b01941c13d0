"""Draw bench/webhook_ack.py's JSON result as an SVG bar chart (no plotting library, no
external resources): per endpoint, bare Flask vs product req/s, with the budget (0.5 x bare)
marked on the product bar and the p99 at the fixed rate written beside it.

    python bench/webhook_ack.py --json > /tmp/ack.json
    python bench/chart_ack.py /tmp/ack.json docs/img/webhook-ack.svg
"""

from __future__ import annotations

from html import escape
from typing import Any

from chart import write_chart  # bench/ is the script's own directory

WIDTH, BAR, BAR_GAP, GROUP_GAP, LABEL_WIDTH, TOP = 860, 24, 6, 22, 150, 96
COLOURS = {"product": "#0b5cad", "info": "#6e9fd6", "baseline": "#8c959f",
           "budget": "#cf222e", "muted": "#57606a"}


def groups(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One group per row of the result: its bars and what to write beside them."""
    found = []
    for row in result["rows"]:
        judged = row["judged"]
        kind = "product" if judged else "info"

        def mark(ok: bool, judged: bool = judged) -> str:
            return ("PASS" if ok else "FAIL") if judged else "info"

        found.append({
            "title": row["label"] + ("" if judged else " (information, not judged)"),
            "bars": [("bare Flask JSON", row["bare_rps"], "baseline", ""),
                     ("product", row["product_rps"], kind,
                      f", {row['ratio']:.2f} \u00d7 bare: {mark(row['pass_ratio'])}")],
            "budget": result["budget_ratio"] * row["bare_rps"],
            "note": (f"at {result['offered_rate']:g} req/s: p99 {row['p99_ms']:,.1f} ms "
                     f"{mark(row['pass_p99'])} (budget ≤ {result['budget_p99_ms']:g} ms), "
                     f"p50 {row['p50_ms']:,.1f} ms; bare p99 {row['bare_p99_ms']:.1f} ms"),
        })
    return found


def svg(result: dict[str, Any]) -> str:
    found = groups(result)
    top = max(value for group in found for _, value, _, _ in group["bars"]) or 1.0
    scale = (WIDTH - LABEL_WIDTH - 190) / top
    group_height = 20 + 2 * (BAR + BAR_GAP) + 16 + GROUP_GAP
    height = TOP + len(found) * group_height + 44
    gunicorn = result.get("gunicorn", {})
    settings = " ".join(gunicorn.get("args", []))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="title desc">',
        '<title id="title">Webhook acknowledgement and storefront me endpoint: requests per '
        'second against a bare Flask JSON endpoint (higher is better)</title>',
        f'<desc id="desc">gunicorn {escape(settings)}, {result.get("cpus", "?")} CPUs, '
        f'loopback; budget: product at least {result["budget_ratio"]:g} times bare</desc>',
        '<style>text{font:13px system-ui,sans-serif;fill:#1b1f24}.v{font-weight:600}'
        f'.h{{font-weight:600}}.n{{fill:{COLOURS["muted"]};font-size:12px}}</style>',
        '<text x="0" y="20" style="font-size:16px;font-weight:600">Webhook acknowledgement and '
        'storefront <tspan font-family="monospace">me</tspan>: req/s vs bare Flask</text>',
        f'<text class="n" x="0" y="40">gunicorn {escape(settings)} '
        f'({escape(str(gunicorn.get("worker_class", "")))}), {result.get("cpus", "?")} CPUs, '
        'loopback, one run, same gunicorn settings for both</text>',
        f'<text class="n" x="0" y="56">throughput: '
        f'{escape(str(result.get("throughput_generator", "")))}; latency: open loop at '
        f'{result["offered_rate"]:g} req/s</text>',
        f'<text class="n" x="0" y="72">webhooks: signed orders/paid, '
        f'{result.get("webhook_body_bytes_mean", 0):,.0f} bytes, distinct event ids, '
        f'JOBS_MODE={escape(str(result.get("jobs_mode", "")))}; '
        f'<tspan style="fill:{COLOURS["budget"]}">dashed red line: budget '
        f'{result["budget_ratio"]:g} &#215; bare</tspan></text>',
    ]
    for index, group in enumerate(found):
        y0 = TOP + index * group_height
        parts.append(f'<text class="h" x="0" y="{y0 + 12}">{escape(group["title"])}</text>')
        bar_top = y0 + 20
        budget_x = LABEL_WIDTH + group["budget"] * scale
        for number, (label, value, kind, suffix) in enumerate(group["bars"]):
            y = bar_top + number * (BAR + BAR_GAP)
            width = max(value * scale, 1)
            # The value goes right of the bar, and right of the budget line on the product bar.
            text_x = max(LABEL_WIDTH + width, budget_x if number else 0) + 8
            parts += [
                f'<text x="12" y="{y + 17}">{escape(label)}</text>',
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR}" '
                f'fill="{COLOURS[kind]}"><title>{escape(group["title"])}, {escape(label)}: '
                f'{value:,.0f} req/s</title></rect>',
                f'<text class="v" x="{text_x:.1f}" y="{y + 17}">'
                f'{value:,.0f} req/s{escape(suffix)}</text>',
            ]
        product_y = bar_top + BAR + BAR_GAP
        parts += [
            f'<line x1="{budget_x:.1f}" x2="{budget_x:.1f}" y1="{product_y - 3}" '
            f'y2="{product_y + BAR + 3}" stroke="{COLOURS["budget"]}" stroke-width="2" '
            f'stroke-dasharray="4 3"><title>budget: {group["budget"]:,.0f} req/s</title></line>',
            f'<text class="n" x="12" y="{product_y + BAR + 18}">{escape(group["note"])}; '
            f'budget line at {group["budget"]:,.0f} req/s</text>',
        ]
    verdict = "PASS" if result.get("pass") else "FAIL"
    others = float(result.get("max_others_cpu_share", 0.0))
    if others > 0.05:
        parts.append(f'<text class="n" x="0" y="{height - 26}" style="fill:'
                     f'{COLOURS["budget"]}">other processes used up to {100 * others:.0f} % of '
                     'the machine during a measurement: these figures are disturbed</text>')
    parts += [
        f'<text class="n" x="0" y="{height - 10}">overall: {verdict} (budgets '
        f'{"PASS" if result.get("pass_budgets") else "FAIL"}, checks '
        f'{"PASS" if result.get("checks_ok") else "FAIL"}); bench/webhook_ack.py</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    write_chart(svg)


if __name__ == "__main__":
    main()
