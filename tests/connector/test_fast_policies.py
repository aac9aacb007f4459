"""connectors/fast_policies.py against Rasa's own code, without a model: the states of many made-up conversations
(forms, hidden rule turns, reverted and restarted turns, follow-up actions) and the rule keys of made-up rule sets
(conversation starts, slots that must not be set, loops, ties between the longest keys) are exactly Rasa's.
tests/integration/test_fast_policies.py does the same on the shipped model, with its predictions."""
from __future__ import annotations

import itertools
import json
import random

import pytest
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
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


@pytest.fixture(scope="module")
def rule_policy(tmp_path_factory):
    storage = LocalModelStorage(tmp_path_factory.mktemp("rules"))
    return RulePolicy.create({**RulePolicy.get_default_config()}, storage, Resource("rules"),
                             ExecutionContext(GraphSchema({}), "test"))


def random_state(rng: random.Random, starter_allowed: bool = True):
    state = {}
    if not starter_allowed or rng.random() < 0.9:
        state["prev_action"] = rng.choice([{"action_name": rng.choice(ACTIONS[:4])}, {"action_text": "ok"}])
    if rng.random() < 0.7:
        user = {"intent": rng.choice(INTENTS[:3])}
        if rng.random() < 0.2:
            user["entities"] = ("order_number",)
        state["user"] = user
    slots = {}
    if rng.random() < 0.4:
        slots["flagged"] = rng.choice([(1.0, 1.0), (1.0, 0.0), SHOULD_NOT_BE_SET])
    if rng.random() < 0.3:
        slots["mood"] = rng.choice([(1.0, 0.0), (0.0, 1.0)])
    if slots:
        state["slots"] = slots
    if rng.random() < 0.2:
        state["active_loop"] = {"name": rng.choice(["order_form", SHOULD_NOT_BE_SET])}
    return state


def random_lookup(rng: random.Random):
    lookup = {}
    for _ in range(rng.randint(1, 60)):
        states = [random_state(rng) for _ in range(rng.randint(1, 4))]
        for state in states:  # json turns tuples into lists, as in a trained lookup
            for sub_state in state.values():
                for key, value in list(sub_state.items()):
                    if isinstance(value, tuple):
                        sub_state[key] = list(value)
        if rng.random() < 0.3:  # rules that need no previous action name or intent
            states[-1].get("prev_action", {}).pop("action_name", None)
            states[-1].get("user", {}).pop("intent", None)
            states[-1] = {key: value for key, value in states[-1].items() if value}
        lookup[json.dumps(states, sort_keys=True)] = rng.choice(ACTIONS)
        if rng.random() < 0.2:  # twins of the same length that apply together: a tie between the longest keys
            for slot in ("mood", "tone"):
                twin = json.loads(json.dumps(states))
                twin[-1].setdefault("slots", {})[slot] = SHOULD_NOT_BE_SET
                lookup[json.dumps(twin, sort_keys=True)] = rng.choice(ACTIONS)
    return lookup


def test_rule_keys_are_rasas_and_the_longest_is_rasas_choice(rule_policy):
    rng = random.Random(6)
    rasa_keys = RulePolicy._get_possible_keys.__wrapped__
    compared = found = tied = 0
    for _ in range(200):
        lookup = random_lookup(rng)
        for _ in range(30):
            conversation = [random_state(rng, starter_allowed=(i == 0)) for i in range(rng.randint(1, 8))]
            # the conversation ends in states that some rule was made from, so that rules do apply
            if rng.random() < 0.5:
                rule = json.loads(rng.choice(list(lookup)))
                conversation = conversation[: rng.randint(0, 3)] + [
                    {kind: {key: tuple(value) if isinstance(value, list) else value for key, value in sub.items()}
                     for kind, sub in state.items()} for state in rule]
            expected = rasa_keys(rule_policy, lookup, conversation)
            with fast_policies.one_prediction():
                got = rule_policy._get_possible_keys(lookup, conversation)
                indexed = set(fast_policies._rule_index(rule_policy, lookup).possible_keys(conversation))
            assert indexed == expected
            assert got == expected
            if expected:
                found += 1
                assert max(got, key=len) == max(expected, key=len)
                tied += sum(len(key) == len(max(expected, key=len)) for key in expected) > 1
            compared += 1
    assert found > 1000 and tied > 10


def test_a_changed_lookup_is_indexed_again(rule_policy):
    lookup = {json.dumps([{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "greet"}}]): "utter_greet"}
    state = [{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "deny"}}]
    with fast_policies.one_prediction():
        assert rule_policy._get_possible_keys(lookup, state) == set()
        lookup[json.dumps([{"prev_action": {"action_name": "action_listen"}, "user": {"intent": "deny"}}])] = "x"
        assert len(rule_policy._get_possible_keys(lookup, state)) == 1
