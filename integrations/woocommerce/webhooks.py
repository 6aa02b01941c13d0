"""WooCommerce webhook deliveries (DESIGN §8, "Webhooks"): the signature, the unsigned ping
sent when a webhook is created, and the ``X-WC-Webhook-*`` headers.

The signature is base64(HMAC-SHA256(secret, raw body)); it must be checked on the bytes as
received, before any parsing, because re-encoded JSON would not match."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored",
          "customer.created")
SECRET_LENGTH = 40
_ALPHANUMERIC = string.ascii_letters + string.digits
# A base64 SHA-256 digest is 44 characters; anything much longer is not a signature.
_MAX_SIGNATURE_LENGTH = 128
_PING = re.compile(rb"webhook_id=([1-9][0-9]{0,17})")
_TOPIC = re.compile(r"([a-z][a-z0-9_-]{0,63})\.([a-z0-9][a-z0-9_-]{0,127})")
_WEBHOOK_ID = re.compile(r"[0-9]{1,19}")
_MAX_HEADER_LENGTH = 2_000
SIGNATURE_HEADER = "x-wc-webhook-signature"


def webhook_signature(body: bytes, secret: str) -> str:
    """``X-WC-Webhook-Signature`` for ``body``: base64 HMAC-SHA256 keyed with the secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` was made over ``body`` with ``secret``, in constant time."""
    if not secret or not signature or len(signature) > _MAX_SIGNATURE_LENGTH:
        return False  # an empty secret would let anyone sign
    try:
        given = base64.b64decode(signature.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): value for name, value in headers.items()}


def ping_webhook_id(body: bytes, headers: Mapping[str, str]) -> int | None:
    """The webhook id of WooCommerce's creation ping (form body exactly ``webhook_id=N``,
    unsigned), or None for anything else. A "ping" that carries a signature header is not
    treated as one: it must go through signature verification like any delivery."""
    if SIGNATURE_HEADER in _lower(headers):
        return None
    match = _PING.fullmatch(body)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class WooDelivery:
    """What the ``X-WC-Webhook-*`` headers say about one delivery."""

    topic: str
    resource: str
    event: str
    webhook_id: str
    delivery_id: str
    source: str


class InvalidDelivery(ValueError):
    """The headers are not a WooCommerce delivery's; the message names the header."""


def _header(headers: dict[str, str], name: str, *, required: bool) -> str:
    """``name`` as WooCommerce spells it (e.g. ``Delivery-ID``); looked up lowercased."""
    value = headers.get(f"x-wc-webhook-{name.lower()}")
    if value is None or value == "":
        if required:
            raise InvalidDelivery(f"X-WC-Webhook-{name} header is missing")
        return ""
    if not isinstance(value, str) or len(value) > _MAX_HEADER_LENGTH:
        raise InvalidDelivery(f"X-WC-Webhook-{name} header must be text of at most "
                              f"{_MAX_HEADER_LENGTH} characters")
    return value.strip()


def delivery_headers(headers: Mapping[str, str]) -> WooDelivery:
    """The delivery's topic, resource, event, webhook id, delivery id and source site.

    Resource and event, when sent, must agree with the topic; when absent they are taken
    from it. The delivery id may be absent (older WooCommerce sent a comment id, or none):
    it identifies one attempt, never one change, so nothing should rely on it."""
    lowered = _lower(headers)
    topic = _header(lowered, "Topic", required=True)
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise InvalidDelivery(f"X-WC-Webhook-Topic must look like resource.event "
                              f"(e.g. order.updated), got {topic[:80]!r}")
    resource = _header(lowered, "Resource", required=False) or match.group(1)
    event = _header(lowered, "Event", required=False) or match.group(2)
    if (resource, event) != match.groups():
        raise InvalidDelivery(f"X-WC-Webhook-Resource/-Event ({resource[:40]!r}, "
                              f"{event[:40]!r}) disagree with the topic {topic!r}")
    webhook_id = _header(lowered, "ID", required=True)
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise InvalidDelivery(f"X-WC-Webhook-ID must be a number, got {webhook_id[:40]!r}")
    return WooDelivery(
        topic=topic, resource=resource, event=event, webhook_id=webhook_id,
        delivery_id=_header(lowered, "Delivery-ID", required=False),
        source=_header(lowered, "Source", required=False),
    )


def new_webhook_secret() -> str:
    """A webhook secret: 40 random letters and digits (about 238 bits). Alphanumeric because
    WooCommerce HTML-entity-decodes the stored secret before signing, which would change
    characters such as ``&`` and quotes."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(SECRET_LENGTH))
