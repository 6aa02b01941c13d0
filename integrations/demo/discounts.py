"""Discount codes on the demo platform: accepted as generated, no outbound call."""

from __future__ import annotations

from integrations.base import DiscountRequest, IssuedCode


def issue_demo_code(request: DiscountRequest) -> IssuedCode:
    return IssuedCode(code=request.code, platform_discount_id=f"demo-{request.redemption_id}")
