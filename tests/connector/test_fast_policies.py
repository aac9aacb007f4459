"""connectors/fast_policies.py against Rasa's own code, without a model: the states of many made-up conversations
(forms, hidden rule turns, reverted and restarted turns, follow-up actions) are exactly Rasa's.
tests/integration/test_fast_policies.py does the same on the shipped model, with its predictions."""
from __future__ import annotations

import itertools
import random

import pytest
from rasa.shared.core.constants import SHOULD_NOT_BE_SET
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, ActionExecutionRejected, ActionReverted, ActiveLoop,
                                     FollowupAction, Restarted, SessionStarted, SlotSet, UserUttered,
                                     UserUtteranceReverted)
from rasa.shared.core.trackers import DialogueStateTracker

from connectors import fast_policies

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, order_status, deny, inform, ask_question]
entities: [order_number, size]
slots:
  order_number:
    type: text
    mappings: [{type: from_entity, entity: order_number}]
  flagged:
    type: bool
    initial_value: false
    mappings: [{type: custom}]
  mood:
    type: categorical
    values: [calm, upset]
    mappings: [{type: custom}]
  quiet:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
forms:
  order_form:
    required_slots: [order_number]
responses:
  utter_greet: [{text: "hi"}]
  utter_ask_order_number: [{text: "which order"}]
actions: [action_answer, action_handoff]
""")
ACTIONS = ["action_listen", "utter_greet", "action_answer", "action_handoff", "order_form", "utter_ask_order_number"]
INTENTS = ["greet", "order_status", "deny", "inform", "ask_question"]


@pytest.fixture(scope="module", autouse=True)
def installed():
    fast_policies.install()


def random_events(rng: random.Random, length: int):
    events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    for _ in range(length):
        kind = rng.random()
        if kind < 0.3:
            entities = [{"entity": "order_number", "value": "KL-1", "start": 0, "end": 4}] if rng.random() < 0.3 else []
            events.append(UserUttered(rng.choice(["hi", "where is it", "no"]),
                                      {"name": rng.choice(INTENTS), "confidence": 1.0}, entities))
        elif kind < 0.65:
            events.append(ActionExecuted(rng.choice(ACTIONS), hide_rule_turn=rng.random() < 0.3))
        elif kind < 0.75:
            name = rng.choice(["order_number", "flagged", "mood", "quiet"])
            value = {"order_number": rng.choice(["KL-1", None, SHOULD_NOT_BE_SET]), "flagged": rng.choice([True, False]),
                     "mood": rng.choice(["calm", "upset", None]), "quiet": "x"}[name]
            events.append(SlotSet(name, value))
        elif kind < 0.82:
            events.append(ActiveLoop(rng.choice(["order_form", None])))
        elif kind < 0.86:
            events.append(ActionExecutionRejected(rng.choice(ACTIONS)))
        elif kind < 0.89:
            events.append(FollowupAction(rng.choice(ACTIONS)))
        elif kind < 0.93:
            events.append(UserUtteranceReverted())
        elif kind < 0.96:
            events.append(ActionReverted())
        else:
            events.append(rng.choice([Restarted(), SessionStarted()]))
    return events


def trackers(count: int = 300):
    rng = random.Random(16)
    for number in range(count):
        yield DialogueStateTracker.from_events(f"t{number}", random_events(rng, rng.randint(0, 25)), DOMAIN.slots)


def sharing(states):
    """Which sub-state objects a list of states shares (Rasa's lists share some; callers change them in place)."""
    seen = {}
    return [tuple((key, seen.setdefault(id(value), len(seen))) for key, value in state.items()) for state in states]


RULE_ONLY = [None, {"rule_only_slots": ["mood"], "rule_only_loops": ["order_form"]},
             {"rule_only_slots": [], "rule_only_loops": []}]


def test_states_are_rasas_within_a_prediction_for_every_option():
    rasa_states = type(DOMAIN).states_for_tracker_history.__wrapped__
    compared = 0
    for tracker in trackers():
        options = list(itertools.product([False, True], [False, True], RULE_ONLY))
        with fast_policies.one_prediction():
            for omit, ignore, rule_only in options * 2:  # the second round is served from the records
                expected = rasa_states(DOMAIN, tracker, omit_unset_slots=omit, ignore_rule_only_turns=ignore,
                                       rule_only_data=rule_only)
                got = DOMAIN.states_for_tracker_history(tracker, omit_unset_slots=omit, ignore_rule_only_turns=ignore,
                                                        rule_only_data=rule_only)
                assert got == expected, (tracker.sender_id, omit, ignore, rule_only)
                assert sharing(got) == sharing(expected)
                for state in got:  # callers change what they get; the next call must not see it
                    state.get("user", {}).pop("intent", None)
                    state.get("slots", {}).clear()
                    state.pop("prev_action", None)
                compared += 1
    assert compared > 5000


def test_outside_a_prediction_rasas_own_code_runs_and_nothing_is_kept(monkeypatch):
    calls = []
    shipped = DialogueStateTracker.generate_all_prior_trackers

    def counted(self):
        calls.append(1)
        return shipped(self)

    monkeypatch.setattr(DialogueStateTracker, "generate_all_prior_trackers", counted)
    tracker = next(trackers(1))
    DOMAIN.states_for_tracker_history(tracker)
    DOMAIN.states_for_tracker_history(tracker)
    assert len(calls) == 2
    with fast_policies.one_prediction():
        DOMAIN.states_for_tracker_history(tracker)
        DOMAIN.states_for_tracker_history(tracker, ignore_rule_only_turns=True)
        assert len(calls) == 3
        tracker.update(ActionExecuted("action_listen"))  # a new event: the states are made again
        DOMAIN.states_for_tracker_history(tracker)
        assert len(calls) == 4
    DOMAIN.states_for_tracker_history(tracker)
    assert len(calls) == 5
