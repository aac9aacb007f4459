"""Masking customer identifiers for logs.

A WhatsApp id is personal data: INFO, WARNING and ERROR lines carry it masked
(`919812345210` -> `+91 98•••••210`, BSUID `US.13491208655302741918` -> `US.13••••918`), which is
still enough to tell two customers apart while reading a log. The full value goes only into DEBUG
lines (`logger.debug(...)`), for an operator who switched debugging on to chase one conversation.

    logger.info("Reply sent to %s", mask_user_id(wa_id))
"""

from __future__ import annotations

from typing import Optional

import phonenumbers

DOT = "\u2022"  # •
# Longer than any phone number or BSUID: anything beyond this is not parsed (hostile input).
_MAX_ID_LENGTH = 64


def mask_phone(number: str) -> str:
    """`919812345210` or `+919812345210` -> `+91 98•••••210` (country code, 2 first and 3 last
    digits of the national number; the mask has one dot per hidden digit)."""
    digits = number.strip().lstrip("+")
    if not digits.isdigit() or not 7 <= len(digits) <= 20:
        return _mask_generic(number)
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return _mask_generic(digits)
    national = phonenumbers.national_significant_number(parsed)
    if len(national) < 6:
        return f"+{parsed.country_code} {DOT * len(national)}"
    return f"+{parsed.country_code} {national[:2]}{DOT * (len(national) - 5)}{national[-3:]}"


def mask_bsuid(user_id: str) -> str:
    """Business-scoped user id `US.13491208655302741918` -> `US.13••••918` (the prefix stays, the
    mask has a fixed length: the id's length says nothing useful)."""
    prefix, _, tail = user_id.rpartition(".")
    return f"{prefix}.{_mask_generic(tail)}" if prefix else _mask_generic(user_id)


def mask_user_id(value: Optional[str]) -> str:
    """Mask whatever identifies a customer: a phone number / wa_id, a BSUID, or another sender id."""
    if value is None:
        return "-"
    value = str(value)
    if len(value) > _MAX_ID_LENGTH:
        return _mask_generic(value)
    stripped = value.strip()
    if stripped.lstrip("+").isdigit():
        return mask_phone(stripped)
    if "." in stripped and stripped.rpartition(".")[2].isalnum():
        return mask_bsuid(stripped)
    return _mask_generic(stripped)


def _mask_generic(value: str) -> str:
    if len(value) <= 6:
        return DOT * len(value)
    return f"{value[:2]}{DOT * 4}{value[-3:]}"
