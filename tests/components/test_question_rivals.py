"""A question with a harmless intent close behind reaches the knowledge base; topics stay ambiguous."""
from __future__ import annotations

import pytest
import yaml
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.training_data.message import Message

from actions.settings import PROJECT_ROOT
from tests.components.designer_components import trained_and_loaded
from components.question_rivals import RIVAL_KEY, QuestionRivals

SETTINGS = str(PROJECT_ROOT / "escalation.yml")
INTENTS = ["ask_question", "order_status", "out_of_scope", "cancel_order", "complaint", "request_human"]


def shipped_fallback_settings():
    """FallbackClassifier's settings as config.yml ships them."""
    pipeline = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())["pipeline"]
    [entry] = [item for item in pipeline if item["name"] == "FallbackClassifier"]
    return {**FallbackClassifier.get_default_config(), **{k: v for k, v in entry.items() if k != "name"}}


def make_component(tmp_path, intents=INTENTS, settings=SETTINGS):
    return trained_and_loaded(QuestionRivals, tmp_path, intents, settings)


def classified(text, *ranking):
    message = Message(data={"text": text})
    message.set("intent", {"name": ranking[0][0], "confidence": ranking[0][1]})
    message.set("intent_ranking", [{"name": name, "confidence": confidence} for name, confidence in ranking])
    return message


def after_the_pipeline_tail(component, message):
    """The component, then FallbackClassifier with config.yml's threshold and ambiguity_threshold."""
    fallback = FallbackClassifier(shipped_fallback_settings())
    [message] = fallback.process(component.process([message]))
    return message


def test_an_order_status_runner_up_no_longer_makes_a_question_ambiguous(tmp_path):
    component = make_component(tmp_path)
    message = classified("dispatch ke baad parcel kahan tak aaya kaise pata chalega",
                         ("ask_question", 0.763), ("order_status", 0.708), ("urgent_problem", 0.239))
    message = after_the_pipeline_tail(component, message)
    assert message.get("intent")["name"] == "ask_question"  # the knowledge base decides
    assert [e["name"] for e in message.get("intent_ranking")][-1] == "order_status"
    assert message.get(RIVAL_KEY) == {"intent": "order_status", "confidence": 0.708}


def test_without_the_component_the_same_message_falls_back(tmp_path):
    # The control: FallbackClassifier alone calls this ranking ambiguous (what the customer got before).
    fallback = FallbackClassifier(shipped_fallback_settings())
    [message] = fallback.process([classified("and on public holidays?", ("ask_question", 0.632), ("out_of_scope", 0.538))])
    assert message.get("intent")["name"] == "nlu_fallback"


@pytest.mark.parametrize("rival", ["cancel_order", "complaint", "request_human"])
def test_a_topic_or_a_person_close_behind_stays_ambiguous(tmp_path, rival):
    component = make_component(tmp_path)
    message = classified("changed my mind, how do i cancel it before dispatch?",
                         ("ask_question", 0.806), (rival, 0.786))
    message = after_the_pipeline_tail(component, message)
    assert message.get("intent")["name"] == "nlu_fallback"
    assert message.get(RIVAL_KEY) is None


def test_a_question_under_the_threshold_still_falls_back(tmp_path):
    component = make_component(tmp_path)
    message = after_the_pipeline_tail(component, classified("hmm", ("ask_question", 0.41), ("order_status", 0.38)))
    assert message.get("intent")["name"] == "nlu_fallback"


def test_order_status_first_with_the_question_close_behind_goes_to_the_order_form(tmp_path):
    component = make_component(tmp_path)
    message = classified("can u check where my order is", ("order_status", 0.80), ("ask_question", 0.74))
    message = after_the_pipeline_tail(component, message)
    assert message.get("intent")["name"] == "order_status"  # the form asks for the number
    assert message.get(RIVAL_KEY) == {"intent": "ask_question", "confidence": 0.74}


def test_without_yields_to_order_status_first_still_falls_back(tmp_path):
    document = yaml.safe_load(open(SETTINGS))
    del document["question_rivals"]["yields_to"]
    edited = tmp_path / "escalation.yml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True))
    (tmp_path / "model").mkdir()
    component = make_component(tmp_path / "model", settings=str(edited))
    message = classified("where is my order, when will it come", ("order_status", 0.74), ("ask_question", 0.71))
    message = after_the_pipeline_tail(component, message)
    assert message.get("intent")["name"] == "nlu_fallback"
    assert message.get(RIVAL_KEY) is None


def test_a_topic_first_with_the_question_close_behind_stays_ambiguous(tmp_path):
    component = make_component(tmp_path)
    message = classified("any charge for cancelling an order today", ("cancel_order", 0.81), ("ask_question", 0.78))
    message = after_the_pipeline_tail(component, message)
    assert message.get("intent")["name"] == "nlu_fallback"
    assert message.get(RIVAL_KEY) is None


def test_does_nothing_when_trained_without_the_question_intent(tmp_path):
    component = make_component(tmp_path, intents=["alarm_set", "weather_query"])
    message = after_the_pipeline_tail(component, classified("x", ("ask_question", 0.8), ("order_status", 0.79)))
    assert message.get("intent")["name"] == "nlu_fallback"


@pytest.mark.parametrize("key", ["intents", "yields_to"])
@pytest.mark.parametrize("listed", ["complaint", "request_human", "stop_messages"])
def test_listing_a_topic_a_person_or_stop_is_refused_with_a_clear_error(tmp_path, listed, key):
    document = yaml.safe_load(open(SETTINGS))
    document["question_rivals"][key].append(listed)
    edited = tmp_path / "escalation.yml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True))
    with pytest.raises(ValueError, match=rf"question_rivals`.{key} may not list {listed}"):
        make_component(tmp_path / "model", settings=str(edited))


def test_a_section_without_a_list_is_a_clear_error(tmp_path):
    document = yaml.safe_load(open(SETTINGS))
    document["question_rivals"]["intents"] = "order_status"
    edited = tmp_path / "escalation.yml"
    edited.write_text(yaml.safe_dump(document, allow_unicode=True))
    with pytest.raises(ValueError, match="must be a list of intent names"):
        make_component(tmp_path / "model", settings=str(edited))
