"""The per-message lookups the Rasa speed-ups cache (connectors/rasa_speedups.py) answer exactly as Rasa's own:
`Domain.is_empty` (asked before every parse's intent check) and `Event.resolve_by_type` (asked for every event
deserialised), also after a new event class is defined."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SlotSet, UserUttered
from rasa.shared.utils.common import all_subclasses

from connectors import rasa_speedups

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_IS_EMPTY = getattr(Domain.is_empty, "__wrapped__", Domain.is_empty)
SHIPPED_RESOLVE = getattr(Event.resolve_by_type, "__wrapped__", Event.resolve_by_type)


@pytest.fixture
def cached_domain_check(monkeypatch):
    monkeypatch.setattr(Domain, "is_empty", SHIPPED_IS_EMPTY)
    monkeypatch.setattr(Domain, rasa_speedups._INSTALLED_FLAG, False, raising=False)
    rasa_speedups.install_cached_empty_domain_check()
    assert Domain.is_empty is not SHIPPED_IS_EMPTY


@pytest.fixture
def cached_event_classes(monkeypatch):
    """Installs the cache on Event and takes it off again, leaving Event's own attributes as they were."""
    saved = {name: Event.__dict__[name] for name in ("resolve_by_type", "__init_subclass__", rasa_speedups._INSTALLED_FLAG)
             if name in Event.__dict__}
    Event.resolve_by_type = staticmethod(SHIPPED_RESOLVE)
    for name in ("__init_subclass__", rasa_speedups._INSTALLED_FLAG):
        if name in Event.__dict__:
            delattr(Event, name)
    try:
        rasa_speedups.install_cached_event_classes()
        assert Event.resolve_by_type is not SHIPPED_RESOLVE
        yield
    finally:
        for name in ("resolve_by_type", "__init_subclass__", rasa_speedups._INSTALLED_FLAG):
            if name in Event.__dict__:
                delattr(Event, name)
        for name, value in saved.items():
            setattr(Event, name, value)
        # Rasa keeps no registry of event classes: a test's class leaves Rasa's walk once it is garbage (a class
        # sits in reference cycles, so only a collection frees it). No other test may ever resolve one of them.
        gc.collect()
        assert all(cls.__module__ != __name__ for cls in all_subclasses(Event))
        assert SHIPPED_RESOLVE("bot").__module__ == "rasa.shared.core.events"



@pytest.mark.parametrize("domain", [
    pytest.param(lambda: Domain.load(str(ROOT / "domain.yml")), id="the shipped domain"),
    pytest.param(Domain.empty, id="an empty domain"),
    pytest.param(lambda: Domain.from_dict({}), id="a domain from an empty dict"),
    pytest.param(lambda: Domain.from_dict({"intents": ["greet"]}), id="one intent"),
    pytest.param(lambda: Domain.from_dict({"responses": {"utter_hi": [{"text": "hi"}]}}), id="one response"),
])
def test_is_empty_answers_as_rasa_does(cached_domain_check, domain):
    built = domain()
    for _ in range(2):  # the first call renders the empty domain, the second uses it
        assert built.is_empty() == SHIPPED_IS_EMPTY(built)


def test_only_an_empty_domain_is_empty(cached_domain_check):
    assert Domain.empty().is_empty() is True
    assert Domain.load(str(ROOT / "domain.yml")).is_empty() is False


def test_every_event_name_resolves_to_rasas_class(cached_event_classes):
    names = sorted({cls.type_name for cls in all_subclasses(Event) if getattr(cls, "type_name", None)})
    assert len(names) > 20 and {"user", "bot", "slot", "action"} <= set(names)
    for _ in range(2):  # computed, then from the cache
        for name in names:
            assert Event.resolve_by_type(name) is SHIPPED_RESOLVE(name), name
    assert Event.resolve_by_type("user") is UserUttered and Event.resolve_by_type("slot") is SlotSet


def test_unknown_names_defaults_and_topic_behave_as_before(cached_event_classes):
    for _ in range(2):
        with pytest.raises(ValueError) as cached:
            Event.resolve_by_type("no_such_event")
        with pytest.raises(ValueError) as shipped:
            SHIPPED_RESOLVE("no_such_event")
        assert str(cached.value) == str(shipped.value)
        assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
        assert Event.resolve_by_type("topic") is None
        assert Event.resolve_by_type("user", default=SlotSet) is UserUttered


def test_an_event_class_defined_later_is_found(cached_event_classes):
    with pytest.raises(ValueError):
        Event.resolve_by_type("kesar_lane_test_event")

    class KesarLaneTestEvent(SlotSet):
        type_name = "kesar_lane_test_event"

    try:
        assert Event.resolve_by_type("kesar_lane_test_event") is KesarLaneTestEvent
        assert Event.resolve_by_type("kesar_lane_test_event") is SHIPPED_RESOLVE("kesar_lane_test_event")
    finally:
        del KesarLaneTestEvent  # collected when the fixture takes the cache off


def test_a_later_class_that_rasas_walk_finds_first_replaces_the_cached_answer(cached_event_classes):
    # Rasa's walk tries Event's direct subclasses before their subclasses, so a direct subclass defined later
    # with the type name of a grandchild (BotUttered: "bot") is what the walk answers from then on.
    assert Event.resolve_by_type("bot") is SHIPPED_RESOLVE("bot")  # cached now
    bot_before = Event.resolve_by_type("bot")

    class LaterBot(Event):
        type_name = "bot"

        def __eq__(self, other):
            return isinstance(other, LaterBot)

        def __hash__(self):
            return 1

        def as_story_string(self):
            return None

    try:
        assert SHIPPED_RESOLVE("bot") is LaterBot
        assert Event.resolve_by_type("bot") is LaterBot is not bot_before
    finally:
        del LaterBot  # collected when the fixture takes the cache off: the rest of the suite sees Rasa's own "bot"


def test_installing_twice_keeps_one_cache(cached_event_classes, cached_domain_check):
    resolve, is_empty = Event.resolve_by_type, Domain.is_empty
    rasa_speedups.install_cached_event_classes()
    rasa_speedups.install_cached_empty_domain_check()
    assert Event.resolve_by_type is resolve and Domain.is_empty is is_empty
