"""TED is skipped only where it could not have changed the next action, and the predictions stay Rasa's own.

connectors/rasa_speedups.py runs the model's cheap policies (rules, memorised stories) first and gives TED's
node a zero stand-in when one of them has already decided: a "no user" prediction, or confidence 1.0 from a
policy ranked above TED. Here the trained model predicts the next action at every step of the test stories and
the training stories, once as Rasa ships it and once with the speed-up: the winning action, its policy,
probabilities and events must be identical, and TED must have been skipped for some steps and run for others.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import ActionExecuted, ActionExecutionRejected, UserUttered
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.core.trackers import DialogueStateTracker

from connectors import rasa_speedups

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def story_files(with_rules: bool = False):
    files = sorted(ROOT.glob("tests/test_stories*.yml")) + sorted((ROOT / "data" / "stories").glob("*.yml"))
    if with_rules:
        files += sorted((ROOT / "data" / "rules").glob("*.yml"))
    return files


def prediction_points(domain, with_rules: bool = False):
    """A tracker for every action of every story (and rule): the events before it, after a session start.

    Each distinct history once, named after the first story that reaches it: a prediction depends only on the
    tracker's events (its slots come from the same domain), so a repeat (stories share their openings) proves
    nothing new. A fresh reader per file: a YAMLStoryReader keeps every step it has read and returns them all from
    each `read_from_file`, so one shared reader yielded every earlier file's steps again (5,392 points, 582 of them
    distinct: the same 582 as now)."""
    seen = set()
    for path in story_files(with_rules):
        for step in YAMLStoryReader(domain).read_from_file(path):
            events = [ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
            for event in step.events:
                if isinstance(event, ActionExecuted) and event.action_name != "action_listen" or (
                        isinstance(event, ActionExecuted) and isinstance(events[-1], ActionExecuted)):
                    history = repr(without_time(events))
                    if history not in seen:
                        seen.add(history)
                        yield DialogueStateTracker.from_events(f"{path.stem}:{step.block_name}", list(events),
                                                               domain.slots)
                events.append(event)


def without_time(events):
    return [{k: v for k, v in event.as_dict().items() if k != "timestamp"} for event in events]


def summary(prediction):
    return (prediction.policy_name, prediction.policy_priority, list(prediction.probabilities),
            without_time(prediction.events), without_time(prediction.optional_events),
            prediction.is_end_to_end_prediction, prediction.is_no_user_prediction, prediction.hide_rule_turn,
            prediction.action_metadata)


@pytest.fixture(scope="module")
def agent(agent):
    """The worker's shared agent (tests/integration/conftest.py), with the TED skip installed even when
    RASA_SPEEDUPS=0 left it out (it patches MessageProcessor, so it applies to an agent already loaded)."""
    rasa_speedups.install_outranked_policies_skipped()
    return agent


def test_every_story_step_is_predicted_exactly_as_rasa_does_and_ted_is_skipped_where_it_cannot_win(agent):
    processor = agent.processor
    [ted_node] = [n for n in processor.graph_runner._instantiated_nodes.values() if type(n._component) is TEDPolicy]
    shipped = MessageProcessor._predict_next_with_tracker.__wrapped__
    assert MessageProcessor._predict_next_with_tracker is not shipped

    ted_calls = []
    own_predict = ted_node._fn  # the graph calls the class's function with the component

    def counted(*args, **kwargs):
        ted_calls.append(1)
        return own_predict(*args, **kwargs)

    ted_node._fn = counted
    try:
        compared = skipped = 0
        for tracker in prediction_points(agent.domain):
            before = len(ted_calls)
            by_rasa = shipped(processor, tracker.copy())
            assert len(ted_calls) == before + 1  # Rasa runs TED every time
            quick = MessageProcessor._predict_next_with_tracker(processor, tracker.copy())
            skipped += len(ted_calls) == before + 1
            assert summary(quick) == summary(by_rasa), tracker.sender_id
            compared += 1
    finally:
        ted_node._fn = own_predict
    assert compared > 200
    assert skipped > compared // 3  # most steps follow a rule
    assert skipped < compared  # where no rule is sure (RulePolicy's 0.3 fallback), TED still runs


def _prediction(probabilities, priority, policy="RulePolicy", no_user=False):
    return PolicyPrediction(list(probabilities), policy, priority, is_no_user_prediction=no_user)


def test_whenever_ted_is_skipped_no_prediction_of_ted_could_have_won(agent):
    """The skip rule against Rasa's own ensemble: where it says "outranked", even a TED prediction that is sure
    of another action loses; where it does not, such a TED prediction wins, so TED must run."""
    skipper = rasa_speedups.OutrankedPolicySkipper.for_processor(agent.processor)
    domain = agent.domain
    size = len(domain.action_names_or_texts)
    greet, handoff = domain.index_for_action("utter_greet"), domain.index_for_action("action_handoff")
    listening = DialogueStateTracker.from_events("t", [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"})])
    rejected = DialogueStateTracker.from_events("t", [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}),
                                                      ActionExecutionRejected("utter_greet")])
    sure_greet = np.eye(size)[greet].tolist()
    fallback = (np.eye(size)[handoff] * 0.3).tolist()  # RulePolicy when no rule applies
    cases = [  # (cheap predictions, tracker, outranked?, could a sure TED win?)
        ([_prediction(sure_greet, 6), _prediction([0.0] * size, 3, "MemoizationPolicy")], listening, True, False),
        ([_prediction([0.0] * size, 6), _prediction(sure_greet, 3, "MemoizationPolicy")], listening, True, False),
        ([_prediction([0.0] * size, 2, no_user=True)], listening, True, False),
        ([_prediction(fallback, 6), _prediction([0.0] * size, 3, "MemoizationPolicy")], listening, False, True),
        ([_prediction(sure_greet, 6)], rejected, False, True),  # the ensemble zeroes a rejected action first
        # A tie at TED's own priority goes to the policy listed first; TED runs anyway (the rule is cautious).
        ([_prediction(sure_greet, 1, "MemoizationPolicy")], listening, False, False),
    ]
    ensemble = DefaultPolicyPredictionEnsemble()
    ted_sure_of_handoff = _prediction(np.eye(size)[handoff].tolist(), skipper.highest_skippable_priority, "TEDPolicy")
    for cheap, tracker, expected, ted_can_win in cases:
        assert skipper.outranked(cheap, tracker, domain) is expected
        with_ted = ensemble.combine_predictions([*copy.deepcopy(cheap), copy.deepcopy(ted_sure_of_handoff)], tracker, domain)
        stand_in = list(skipper.stand_ins(domain).values())
        with_stand_in = ensemble.combine_predictions([*copy.deepcopy(cheap), *stand_in], tracker, domain)
        assert (with_ted.policy_name == "TEDPolicy") is ted_can_win
        if expected:
            assert summary(with_stand_in) == summary(with_ted)
