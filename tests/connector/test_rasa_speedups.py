"""The cached action-response validator accepts and rejects exactly what Rasa's own check does."""
from __future__ import annotations

import copy

import pytest
from jsonschema import ValidationError
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
    assert rasa_speedups.install() is True
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
    assert rasa_speedups.install() is True
    assert RemoteAction._validate_action_result is patched
    assert cached_check(copy.deepcopy(VALID)) is True
