"""Discount codes on the demo platform: accepted as generated, no outbound call. No store
ever sees a demo code, so disabling one is immediate and no store can report a use; the
orders the demo delivers (with their discount codes) are the only record of use, and the
service checks those."""

from __future__ import annotations

from integrations.base import CodeToDisable, DisabledCode, DiscountRequest, IssuedCode


def issue_demo_code(request: DiscountRequest) -> IssuedCode:
    return IssuedCode(code=request.code, platform_discount_id=f"demo-{request.redemption_id}")


def disable_demo_code(target: CodeToDisable) -> DisabledCode:
    return DisabledCode(code=target.code, platform_discount_id=target.platform_discount_id,
                        usage_count=0)
