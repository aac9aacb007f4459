"""The shipped model predicts exactly the same with the model speed-ups as without.

connectors/rasa_speedups.py makes TED call its traced predict graph directly instead of through
`tf.function`'s signature matching, and loads saved models without tracing a training step. This loads the
trained model and compares TED's action probabilities, for several dialogue states, with and without each.
Rasa's own functions are taken from the speed-ups' `__wrapped__`, so the tests hold whatever ran before them.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from rasa.core.agent import Agent
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.tensorflow.models import RasaModel

from connectors import rasa_speedups
from tests.integration.conftest import newest_model

pytestmark = pytest.mark.integration


def ted_of(agent: Agent) -> TEDPolicy:
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    [ted] = [node._component for node in nodes if isinstance(node._component, TEDPolicy)]
    return ted


def tracker_after(domain, turns) -> DialogueStateTracker:
    events = [ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
    for intent, actions in turns:
        events.append(UserUttered(f"/{intent}", {"name": intent, "confidence": 1.0}))
        for action in actions:
            events.append(ActionExecuted(action))
            if action.startswith("utter_"):
                events.append(BotUttered("..."))
    return DialogueStateTracker.from_events("speedup-test", events, domain.slots)


CONVERSATIONS = [
    [("greet", [])],
    [("ask_question", [])],
    [("ask_question", ["action_answer_question"])],
    [("greet", ["utter_greet", "action_listen"]), ("order_status", [])],
    [("ask_question", ["action_answer_question", "action_listen"]), ("thank", [])],
]


def rasas_own(function):
    return getattr(function, "__wrapped__", function)


def as_shipped(monkeypatch) -> None:
    """Rasa's own loading and prediction, and the speed-ups marked as not installed (all restored afterwards)."""
    monkeypatch.setattr(RasaModel, "_rasa_predict", rasas_own(RasaModel._rasa_predict))
    monkeypatch.setattr(RasaModel, "load", classmethod(rasas_own(RasaModel.load.__func__)))
    monkeypatch.setattr(RasaModel, rasa_speedups._INSTALLED_FLAG, False, raising=False)
    monkeypatch.setattr(RasaModel, rasa_speedups._LOAD_INSTALLED_FLAG, False, raising=False)


@pytest.fixture(scope="module")
def by_rasa():
    """A model loaded and asked as Rasa ships it: its domain, the trackers, TED's probabilities for each. Both tests
    compare against the same figures, so the model is loaded for them once (a load took 10-15 s)."""
    with pytest.MonkeyPatch.context() as patch:
        as_shipped(patch)
        agent = Agent.load(str(newest_model()))
        trackers = [tracker_after(agent.domain, turns) for turns in CONVERSATIONS]
        probabilities = [ted_of(agent).predict_action_probabilities(t, agent.domain).probabilities for t in trackers]
    # The states differ, so the comparisons are not of one repeated prediction.
    assert len({int(np.argmax(p)) for p in probabilities}) > 1
    return agent, trackers, probabilities


def test_direct_predictions_equal_rasas_own(monkeypatch, by_rasa):
    as_shipped(monkeypatch)
    agent, trackers, by_rasa = by_rasa
    ted, domain = ted_of(agent), agent.domain
    assert not isinstance(ted.model._tf_predict_step, tf.types.experimental.ConcreteFunction)

    rasa_speedups.install_direct_model_predictions()
    direct = [ted.predict_action_probabilities(t, domain).probabilities for t in trackers]
    assert isinstance(ted.model._tf_predict_step, tf.types.experimental.ConcreteFunction)

    for rasa_probabilities, direct_probabilities in zip(by_rasa, direct):
        np.testing.assert_array_equal(direct_probabilities, rasa_probabilities)


def test_a_model_loaded_without_a_training_step_predicts_exactly_as_rasas(monkeypatch, by_rasa):
    as_shipped(monkeypatch)
    rasa_load = RasaModel.load.__func__
    by_rasa_agent, trackers, by_rasa = by_rasa
    domain = by_rasa_agent.domain

    rasa_speedups.install_model_loading_without_a_training_step()
    assert RasaModel.load.__func__ is not rasa_load
    quick_agent = Agent.load(str(newest_model()))
    quick = [ted_of(quick_agent).predict_action_probabilities(t, domain).probabilities for t in trackers]

    for rasa_probabilities, quick_probabilities in zip(by_rasa, quick):
        np.testing.assert_array_equal(quick_probabilities, rasa_probabilities)
