"""Errors adapters raise for input the platform sent but we cannot use."""

from __future__ import annotations


class PayloadError(ValueError):
    """A delivery's body is malformed; the message says which field and why."""
