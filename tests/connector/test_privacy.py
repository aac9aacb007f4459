"""Customer ids are masked in INFO-level logs (connectors/privacy.py)."""

import pytest

from connectors.privacy import mask_user_id


@pytest.mark.parametrize(
    "value, masked",
    [
        ("919812345210", "+91 98•••••210"),
        ("+919812345210", "+91 98•••••210"),
        ("15551234567", "+1 55•••••567"),
        ("442071838750", "+44 20•••••750"),
        ("US.13491208655302741918", "US.13••••918"),
        ("default", "de••••ult"),
        ("12345", "•••••"),
        (None, "-"),
    ],
)
def test_customer_ids_are_masked_keeping_enough_to_tell_customers_apart(value, masked):
    assert mask_user_id(value) == masked


def test_a_hostile_id_is_masked_without_being_parsed():
    masked = mask_user_id("9" * 100_000)
    assert masked == "99••••999"
