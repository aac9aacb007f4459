"""A tracker store the endpoints name but that cannot be loaded stops Rasa at start-up, instead of Rasa's
silent fallback to an in-memory store (which forgets every conversation at the next restart)."""
from __future__ import annotations

import pytest
import rasa.core.tracker_store as tracker_store
from rasa.core.tracker_store import InMemoryTrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

from connectors import rasa_start


@pytest.fixture
def guarded(monkeypatch):
    monkeypatch.setattr(tracker_store, "_load_from_module_name_in_endpoint_config",
                        tracker_store._load_from_module_name_in_endpoint_config)
    rasa_start.refuse_a_missing_tracker_store()


def test_rasa_alone_falls_back_to_memory_for_a_missing_store():
    # The behaviour the guard exists for (Rasa 3.6 as shipped, before the start-up step).
    shipped = tracker_store._load_from_module_name_in_endpoint_config
    if getattr(shipped, "_refuses_missing", False):
        pytest.skip("the guard is already installed in this process")
    with pytest.warns(UserWarning, match="not found"):
        store = create_tracker_store(EndpointConfig(type="connectors.no_such_module.Store"), Domain.empty())
    assert isinstance(store, InMemoryTrackerStore)


@pytest.mark.parametrize("type_name", ["connectors.no_such_module.Store", "connectors.postgres_tracker_store.NoSuchClass"])
def test_a_store_that_cannot_be_loaded_stops_the_start_naming_it(guarded, type_name):
    with pytest.raises(SystemExit, match=f"tracker store '{type_name}'.*cannot be loaded"):
        create_tracker_store(EndpointConfig(type=type_name), Domain.empty())


def test_an_attribute_error_inside_the_store_is_not_turned_into_memory(guarded, monkeypatch):
    class Broken:
        def __init__(self, **kwargs):
            raise AttributeError("a bug inside the store")

    monkeypatch.setattr(rasa_start, "__test_broken_store__", Broken, raising=False)
    with pytest.raises(AttributeError, match="a bug inside the store"):
        create_tracker_store(EndpointConfig(type="connectors.rasa_start.__test_broken_store__"), Domain.empty())


def test_a_loadable_custom_store_still_loads(guarded):
    store = create_tracker_store(EndpointConfig(type="rasa.core.tracker_store.InMemoryTrackerStore"), Domain.empty())
    assert type(store) is InMemoryTrackerStore
