"""Log masking: phone numbers and BSUIDs masked at INFO and above, whole at DEBUG; formatters that read
the record's arguments themselves (uvicorn's access log) still work."""

from __future__ import annotations

import io
import logging

import pytest
from uvicorn.logging import AccessFormatter

from inbox.services.privacy import MaskingFilter, masked

PHONE, BSUID = "919876543210", "US.13491208655302741918"


@pytest.mark.parametrize(
    "value, shown",
    [
        (PHONE, "+91 98•••••210"),
        ("+91 98765 43210", "+91 98•••••210"),
        (BSUID, "US.13••••918"),
        ("US.ENT.11882938412", "US.ENT.11••••412"),
        (None, "-"),
    ],
)
def test_identifiers_are_masked(value, shown):
    assert masked(value) == shown


def capture(formatter=None) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    if formatter:
        handler.setFormatter(formatter)
    logger = logging.getLogger(f"privacy-test-{id(stream)}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_info_and_above_are_masked_debug_is_whole():
    logger, stream = capture()
    logger.debug("reply to %s", PHONE)
    logger.info("reply to %s / %s in %d s", PHONE, {"recipient": BSUID}, 30)
    try:
        raise ValueError(f"refused for {PHONE}")
    except ValueError:
        logger.exception("send failed")
    debug, info, *error = stream.getvalue().splitlines()
    assert debug == f"reply to {PHONE}"
    assert info == "reply to +91 98•••••210 / {'recipient': 'US.13••••918'} in 30 s"
    assert PHONE not in "\n".join(error) and "ValueError: refused for +91 98•••••210" in error


def test_order_numbers_timestamps_and_message_ids_are_left_alone():
    logger, stream = capture()
    line = "order #2812 at 1764065702 wamid.HBgLOTE5ODc2NTQzMjEwFQIAERgSQjBDQzU2 hf_5c1d0e9a4b7f4f1e9a1b2c3d"
    logger.info(line)
    assert stream.getvalue().strip() == line


def test_uvicorns_access_log_still_formats_with_a_searched_number():
    logger, stream = capture(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5555", "GET", f"/conversations?q={PHONE}", "1.1", 200)
    assert stream.getvalue().strip() == '127.0.0.1:5555 - "GET /conversations?q=+91 98•••••210 HTTP/1.1" 200 OK'
