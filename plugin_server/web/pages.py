"""Short pages for people (a merchant mid-install): what happened and what to do next."""

from __future__ import annotations

import logging

from flask import Response, make_response, render_template

log = logging.getLogger(__name__)


def message_page(title: str, message: str, status: int, hint: str = "",
                 details: list[tuple[str, str]] | None = None) -> Response:
    """``details``: labelled values the person copies (shown as code, never logged)."""
    if status >= 400:
        log.warning("%s %s: %s", status, title, message)
    response = make_response(render_template("message.html", title=title, message=message,
                                             hint=hint, details=details or []), status)
    response.headers["Cache-Control"] = "no-store"
    return response
