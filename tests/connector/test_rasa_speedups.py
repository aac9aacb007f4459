"""The cached action-response validator accepts and rejects exactly what Rasa's own check does."""
from __future__ import annotations

import copy
from datetime import datetime

import pytest
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction

from connectors import rasa_speedups

VALID = {
    "events": [{"event": "slot", "timestamp": None, "name": "kb_match",
                "value": {"entry_id": "returns", "score": 0.8, "answered": True}}],
    "responses": [{"text": "Free returns within 14 days of delivery.", "buttons": []}],
}
INVALID = [
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": "text"},
    {"events": [{"event": 42}]},
]


@pytest.fixture
def original_and_cached(monkeypatch):
    original = RemoteAction._validate_action_result
    monkeypatch.setattr(RemoteAction, "_validate_action_result", original)
    monkeypatch.setattr(RemoteAction, rasa_speedups._INSTALLED_FLAG, False, raising=False)
    action = RemoteAction("action_answer_question", None)
    rasa_check = lambda result: original(action, result)  # noqa: E731
    rasa_speedups.install_cached_action_validator()
    cached_check = lambda result: RemoteAction._validate_action_result(action, result)  # noqa: E731
    assert RemoteAction._validate_action_result is not original
    return rasa_check, cached_check


def test_valid_responses_pass_both(original_and_cached):
    rasa_check, cached_check = original_and_cached
    assert rasa_check(copy.deepcopy(VALID)) is True
    assert cached_check(copy.deepcopy(VALID)) is True
    assert cached_check({}) is True  # an action that does nothing


@pytest.mark.parametrize("response", INVALID)
def test_invalid_responses_fail_with_the_same_error(original_and_cached, response):
    rasa_check, cached_check = original_and_cached
    with pytest.raises(ValidationError) as by_rasa:
        rasa_check(copy.deepcopy(response))
    with pytest.raises(ValidationError) as cached:
        cached_check(copy.deepcopy(response))
    assert cached.value.message == by_rasa.value.message
    assert "Failed to validate Action server response" in cached.value.message
    assert list(cached.value.path) == list(by_rasa.value.path)


def test_installing_twice_is_harmless(original_and_cached):
    _, cached_check = original_and_cached
    patched = RemoteAction._validate_action_result
    rasa_speedups.install_cached_action_validator()
    assert RemoteAction._validate_action_result is patched
    assert cached_check(copy.deepcopy(VALID)) is True


# --- checking each event against its own event name's schema -------------------------------


def every_kind_of_event() -> list:
    """One serialised event of each kind an action server can return (Rasa's own classes)."""
    from rasa.shared.core import events as e

    return [event.as_dict() for event in [
        e.UserUttered("hi", {"name": "greet", "confidence": 0.9}, [{"entity": "size", "value": "M", "start": 0, "end": 1}]),
        e.BotUttered("hello", {"buttons": [{"title": "Yes", "payload": "/affirm"}]}, {"utter_action": "utter_greet"}),
        e.SlotSet("size", "M"), e.SlotSet("kb_match", {"entry_id": "returns", "score": 0.8}),
        e.EntitiesAdded([{"entity": "size", "value": "M"}]), e.Restarted(), e.UserUtteranceReverted(),
        e.AllSlotsReset(), e.ReminderScheduled("EXTERNAL_nudge", datetime(2026, 1, 1)), e.ReminderCancelled("nudge"),
        e.ActionReverted(), e.StoryExported("story.yml"), e.FollowupAction("action_handoff"), e.ConversationPaused(),
        e.ConversationResumed(), e.ActionExecuted("action_listen", "RulePolicy", 1.0), e.AgentUttered("psst"),
        e.ActiveLoop("order_status_form"), e.LoopInterrupted(True),
        e.ActionExecutionRejected("action_x"), e.SessionStarted(), e.DefinePrevUserUtteredFeaturization(False),
    ]] + [  # Rasa 2's form events, which Rasa 3 still accepts (its classes now write them as loop events)
        {"event": "form", "name": "order_status_form", "timestamp": None},
        {"event": "form_validation", "validate": False, "timestamp": None},
    ]


def mutations(event: dict):
    """The event with each field in turn replaced by values of other JSON types, or removed."""
    for key in event:
        for value in (None, 42, 1.5, True, "text", [], ["x"], {}, {"x": 1}):
            yield {**event, key: value}
        yield {k: v for k, v in event.items() if k != key}
    yield {**event, "event": "no_such_event"}
    yield {**event, "extra_field": {"nested": [1, 2]}}


def test_the_quick_check_agrees_with_rasas_schema_on_every_event_kind_and_mutation():
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    rasa_says = validator_class(schema).is_valid
    quick = rasa_speedups.EventDiscriminatingValidator.build(schema, validator_class)
    assert quick is not None, "Rasa's schema no longer has the shape the quick check relies on"

    events = every_kind_of_event()
    assert len({event["event"] for event in events}) == 23  # every event name in Rasa's schema
    candidates = [{"events": events}, {}, {"events": []}, {"responses": []}, {"events": "x"}, {"events": [1]},
                  {"events": [None]}, {"events": events, "responses": [{"text": 1}]}, [], "text", None]
    candidates += [{"events": [mutated]} for event in events for mutated in mutations(event)]
    candidates += [{"events": [events[0], mutated]} for mutated in mutations(events[2])]
    verdicts = [(rasa_says(candidate), quick.is_valid(candidate)) for candidate in candidates]
    disagreements = [c for c, (rasa, ours) in zip(candidates, verdicts) if rasa != ours]
    assert disagreements == []
    # Both verdicts occur plenty, so agreement is not agreement on one answer.
    assert sum(rasa for rasa, _ in verdicts) > 100 and sum(not rasa for rasa, _ in verdicts) > 100


# An explicit start-up step: on only on the tested Rasa version, off with RASA_SPEEDUPS=0.
def test_the_start_up_step_says_whether_the_speed_ups_are_on(monkeypatch):
    monkeypatch.setattr(rasa_speedups, "install_cached_action_validator", lambda: None)
    monkeypatch.setattr(rasa_speedups, "install_direct_model_predictions", lambda: None)
    monkeypatch.setattr(rasa_speedups, "install_counted_sql_event_streaming", lambda: None)
    tested = rasa_speedups.TESTED_RASA_VERSION
    assert rasa_speedups.install({}, tested).startswith("Rasa speed-ups: on")
    assert rasa_speedups.install({"RASA_SPEEDUPS": "0"}, tested) == "Rasa speed-ups: off (RASA_SPEEDUPS=0)"
    assert "not the tested" in rasa_speedups.install({}, "3.6.22")


def test_switched_off_rasa_is_left_as_shipped(monkeypatch):
    def must_not_run():
        raise AssertionError("installed although switched off")

    monkeypatch.setattr(rasa_speedups, "install_cached_action_validator", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_direct_model_predictions", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_counted_sql_event_streaming", must_not_run)
    rasa_speedups.install({"RASA_SPEEDUPS": "0"}, rasa_speedups.TESTED_RASA_VERSION)
    rasa_speedups.install({}, "3.6.20")


def test_the_tested_version_is_the_locked_one():
    import rasa

    assert rasa.__version__ == rasa_speedups.TESTED_RASA_VERSION


def test_known_third_party_warnings_are_quiet_and_others_are_not(monkeypatch):
    import warnings

    from connectors import rasa_start

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rasa_start.quiet_known_warnings({}) == len(rasa_start.KNOWN_WARNINGS)
        warnings.warn_explicit("declare_namespace", DeprecationWarning, "x.py", 1, module="pkg_resources")
        warnings.warn_explicit("LooseVersion", DeprecationWarning, "x.py", 1, module="sanic_cors.extension")
        warnings.warn_explicit("ours", DeprecationWarning, "x.py", 1, module="connectors.whatsapp")
        warnings.warn_explicit("a user warning", UserWarning, "x.py", 1, module="pkg_resources")
    assert [str(w.message) for w in caught] == ["ours", "a user warning"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rasa_start.quiet_known_warnings({"RASA_QUIET_WARNINGS": "0"}) == 0
        warnings.warn_explicit("declare_namespace", DeprecationWarning, "x.py", 1, module="pkg_resources")
    assert len(caught) == 1
