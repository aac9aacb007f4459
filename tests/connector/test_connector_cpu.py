"""Session 14's cuts of the connector's CPU per message keep what the connector does (issue 16).

- The Graph API client's httpx/httpcore no longer searches `sys.path` for the missing optional `sniffio` on every
  lock, event and shield it makes (connectors/graph_api.py): the import fails as before, at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

import connectors.graph_api as graph_api


def test_a_missing_sniffio_is_remembered_and_httpcore_still_says_asyncio():
    if importlib.util.find_spec("sniffio") is not None or sys.modules.get("sniffio") is not None:
        pytest.skip("sniffio is installed here: nothing to remember")
    assert sys.modules["sniffio"] is None  # set when connectors.graph_api was imported
    with pytest.raises(ModuleNotFoundError):
        import sniffio  # noqa: F401
    from httpcore._synchronization import current_async_library

    async def library() -> str:
        return current_async_library()

    assert asyncio.run(library()) == "asyncio"


def test_an_installed_sniffio_is_left_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object() if name == "sniffio" else None)
    assert graph_api.remember_that_sniffio_is_missing() is False
    assert "sniffio" not in sys.modules
