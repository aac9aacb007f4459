"""Fixtures every browser module shares (the others are imported from test_agent_browser.py)."""

from __future__ import annotations

import pytest

from inbox.models import utcnow


@pytest.fixture
def inbox_clock():
    """The live inbox's clock: the real one. test_window_browser.py overrides it with one it can move on."""
    return utcnow
