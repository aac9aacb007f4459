"""Pattern 2: requests for a person win over the classifier; look-alikes don't."""
from __future__ import annotations

import pytest
import yaml
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.settings import PROJECT_ROOT
from components.human_request import HumanRequestMatcher
from components.keyword_escalation import MATCH_KEY, KeywordEscalation

SETTINGS = str(PROJECT_ROOT / "escalation.yml")


@pytest.fixture(scope="module")
def matcher():
    return HumanRequestMatcher(yaml.safe_load(open(SETTINGS))["human_request"])


@pytest.mark.parametrize(
    "text",
    ["human", "agent please", "AGENT!!", "agent", "speak to someone", "I want to talk to a real person pls",
     "kisi insaan se baat karni hai", "agent se baat karao", "customer care please", "Representative."],
)
def test_requests_for_a_person_match(matcher, text):
    assert matcher.match(text) is not None


@pytest.mark.parametrize(
    "text",
    ["Do you sell human hair extensions?", "my travel agent wants a bulk order", "are you a human?",
     "am i talking to a real person?", "what is your return policy", "agents", "customer care number kya hai",
     "the delivery agent was rude", ""],
)
def test_look_alikes_do_not_match(matcher, text):
    assert matcher.match(text) is None


def make_component(tmp_path, intents):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("keyword_escalation")
    context = ExecutionContext(graph_schema=None, model_id="test")
    component = KeywordEscalation.create({"settings_path": SETTINGS}, storage, resource, context)
    training = TrainingData([Message(data={"text": f"example {i}", "intent": i}) for i in intents])
    component.train(training)
    return KeywordEscalation.load({"settings_path": SETTINGS}, storage, resource, context)


def classified(text, intent="ask_question", confidence=0.97):
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence},
                                   {"name": "request_human", "confidence": 0.02}])
    return message


def test_override_beats_a_confident_classifier(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human"])
    [message] = component.process([classified("ok, agent please")])
    assert message.get("intent") == {"name": "request_human", "confidence": 1.0}
    ranking = message.get("intent_ranking")
    assert ranking[0]["name"] == "request_human" and ranking[1]["confidence"] == 0.0
    assert message.get(MATCH_KEY)["classifier_intent"]["name"] == "ask_question"


def test_look_alike_keeps_the_classifier_result(tmp_path):
    component = make_component(tmp_path, ["ask_question", "request_human"])
    [message] = component.process([classified("Do you sell human hair extensions?")])
    assert message.get("intent")["name"] == "ask_question"


def test_does_nothing_when_trained_without_the_intent(tmp_path):
    component = make_component(tmp_path, ["alarm_set", "weather_query"])
    [message] = component.process([classified("agent please", intent="weather_query")])
    assert message.get("intent")["name"] == "weather_query"
