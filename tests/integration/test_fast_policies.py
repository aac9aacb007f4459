"""On the shipped model, connectors/fast_policies.py predicts exactly as Rasa does.

At every step of the test stories, the training stories and the rules: the prediction (action, policy, probabilities,
events, flags) is the same as Rasa's own `_predict_next_with_tracker` and as the speed-ups without this module; the
states every policy asks for are Rasa's (equal, and sharing sub-states as Rasa's do); RulePolicy's rule keys are Rasa's
for the states it looks at and for every shorter history.
"""
from __future__ import annotations

import pytest
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain

from connectors import fast_policies
from tests.connector.test_fast_policies import sharing
from tests.integration.test_outranked_policies import prediction_points, story_files, summary

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def points(agent):
    points = list(prediction_points(agent.domain, with_rules=True))
    # Every story and rule file gives histories of its own (582 distinct ones in session 37).
    assert {tracker.sender_id.split(":")[0] for tracker in points} == {path.stem for path in story_files(True)}
    assert len(points) > 500
    return points


def rule_policy(agent) -> RulePolicy:
    [policy] = [node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
                if type(node._component) is RulePolicy]
    return policy


def test_every_step_is_predicted_as_rasa_does(agent, points):
    processor = agent.processor
    installed = MessageProcessor._predict_next_with_tracker
    assert installed is not installed.__wrapped__
    rasa_own, without_this = installed.__wrapped__, installed._kesar_lane_inner
    for tracker in points:
        expected = summary(rasa_own(processor, tracker.copy()))
        assert summary(installed(processor, tracker.copy())) == expected, tracker.sender_id
        assert summary(without_this(processor, tracker.copy())) == expected, tracker.sender_id


def test_every_step_gives_each_policy_rasas_states(agent, points):
    domain = agent.domain
    rasa_states = Domain.states_for_tracker_history.__wrapped__
    rule_only = rule_policy(agent)._get_rule_only_data()
    options = [(False, None), (False, rule_only), (True, None), (True, rule_only)]
    for tracker in points:
        with fast_policies.one_prediction():
            for ignore, rule_only_data in options * 2:
                expected = rasa_states(domain, tracker, ignore_rule_only_turns=ignore, rule_only_data=rule_only_data)
                got = domain.states_for_tracker_history(tracker, ignore_rule_only_turns=ignore,
                                                        rule_only_data=rule_only_data)
                assert got == expected, tracker.sender_id
                assert sharing(got) == sharing(expected), tracker.sender_id
                for state in got:  # as RulePolicy does to the last user turn
                    state.get("user", {}).pop("intent", None)


def test_every_step_finds_rasas_rule_keys(agent, points):
    domain, policy = agent.domain, rule_policy(agent)
    rasa_keys = RulePolicy._get_possible_keys.__wrapped__
    rule_only = policy._get_rule_only_data()
    found = 0
    for tracker in points:
        for use_text in (True, False):
            states = policy._prediction_states(tracker, domain, use_text, rule_only_data=rule_only)
            for start in range(len(states)):
                for lookup in (policy.lookup["rules"], policy.lookup["rules_for_loop_unhappy_path"]):
                    expected = rasa_keys(policy, lookup, states[start:])
                    with fast_policies.one_prediction():
                        assert policy._get_possible_keys(lookup, states[start:]) == expected, tracker.sender_id
                    found += bool(expected)
    assert found > 1000
