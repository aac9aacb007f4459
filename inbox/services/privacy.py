"""Customer identifiers in logs: phone numbers and WhatsApp business-scoped user ids (BSUIDs) are
masked at INFO and above and written in full only at DEBUG.

Call sites mask what they log (`masked`); `MaskingFilter` on the handlers is the safety net for
lines we do not write ourselves (libraries, exception messages).
"""

from __future__ import annotations

import logging
import re

# Meta's BSUID: a two-letter country code, a dot, up to 128 letters/digits; parent ids add "ENT.".
BSUID_PATTERN = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
_BSUID_IN_TEXT = re.compile(r"\b[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{6,128}\b")
# E.164 numbers with their country code (11-15 digits), optionally with "+" and spaces as shown in
# the inbox ("+91 98765 43210"). Shorter digit runs (order numbers, Unix timestamps) are left alone.
_PHONE_IN_TEXT = re.compile(r"(?<![\w.•])\+?\d(?:[ -]?\d){10,14}(?![\w•])")


def is_bsuid(value: str | None) -> bool:
    return bool(value) and BSUID_PATTERN.match(value) is not None


def mask_phone(value: str) -> str:
    """'919876543210' or '+91 98765 43210' -> '+91 98•••••210'."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) < 8:
        return "•" * 6
    return f"+{digits[:2]} {digits[2:4]}{'•' * (len(digits) - 7)}{digits[-3:]}"


def mask_bsuid(value: str) -> str:
    """'US.13491208655302741918' -> 'US.13••••918' (the length is not revealed)."""
    prefix = value[:3]  # country code and dot
    if value[3:].startswith("ENT."):
        prefix += "ENT."
    rest = value[len(prefix) :]
    return f"{prefix}{rest[:2]}••••{rest[-3:]}" if len(rest) > 5 else f"{prefix}••••"


def masked(value: str | None) -> str:
    """A customer identifier (phone digits, BSUID, or another sender id) fit for an INFO+ log line."""
    if not value:
        return "-"
    if is_bsuid(value):
        return mask_bsuid(value)
    digits = "".join(ch for ch in value if ch.isdigit())
    if digits and len(digits) >= 8 and not value.strip("+ -0123456789"):
        return mask_phone(value)
    return value[:3] + "•" * max(len(value) - 6, 1) + value[-3:] if len(value) > 6 else "•" * 6


def mask_text(text: str) -> str:
    """Masks every phone number and BSUID found in free text."""
    text = _BSUID_IN_TEXT.sub(lambda match: mask_bsuid(match.group(0)), text)
    return _PHONE_IN_TEXT.sub(lambda match: mask_phone(match.group(0)), text)


class MaskingFilter(logging.Filter):
    """Rewrites INFO+ records so that no full phone number or BSUID reaches the log; DEBUG stays full."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        # The arguments are masked one by one, not the formatted message: formatters such as uvicorn's
        # access log read `record.args` themselves.
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _masked_arg(value) for key, value in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


def _masked_arg(arg):
    if isinstance(arg, bool | int | float) or arg is None:
        return arg  # numbers keep their type for %d; phone numbers are never logged as ints
    text = str(arg)
    cleaned = mask_text(text)
    return arg if cleaned == text else cleaned


# Loggers with handlers of their own: the root (basicConfig) and uvicorn's (its access log has the
# query string, e.g. a phone number typed into search).
HANDLER_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def install_masking_filter() -> None:
    """Adds the filter to every handler of those loggers (once each). Call after logging is configured
    (uvicorn configures its own at start-up)."""
    for name in HANDLER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
                handler.addFilter(MaskingFilter())
