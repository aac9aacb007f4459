"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`."""

from __future__ import annotations

import hashlib
import hmac
from typing import Optional

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def signature_is_valid(app_secret: str, body: bytes, header_value: Optional[str]) -> bool:
    """True only for a well-formed header whose digest matches the exact raw body."""
    if not header_value or not header_value.startswith(_PREFIX):
        return False
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    received = header_value[len(_PREFIX):].strip().lower()
    # compare_digest on ASCII str only; a non-ASCII header is simply wrong.
    if not received.isascii():
        return False
    return hmac.compare_digest(expected, received)


def signature_header_is_well_formed(header_value: Optional[str]) -> bool:
    """Cheap check before the body is read: a request without a plausible header is refused unread."""
    if not header_value or not header_value.startswith(_PREFIX):
        return False
    digest = header_value[len(_PREFIX):].strip()
    return len(digest) == 64 and digest.isascii() and all(c in "0123456789abcdefABCDEF" for c in digest)


def verify_token_matches(expected: str, received: Optional[str]) -> bool:
    """Constant-time comparison for the GET handshake's `hub.verify_token`."""
    if received is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))
