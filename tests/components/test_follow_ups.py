"""Follow-up questions are classified (and searched) as the question they carry; the customer's words stay."""
from __future__ import annotations

import pytest
import yaml
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.settings import PROJECT_ROOT
from components.follow_ups import FOLLOW_UP_KEY, CustomerText, FollowUpMarkers, FollowUpQuestion

SETTINGS = str(PROJECT_ROOT / "escalation.yml")


@pytest.fixture(scope="module")
def markers():
    return FollowUpMarkers(yaml.safe_load(open(SETTINGS, encoding="utf-8"))["follow_ups"])


@pytest.mark.parametrize(
    "text, question",
    [
        ("ok and can I return it if it doesn't fit?", "can I return it if it doesn't fit?"),
        ("also do you ship to Pune?", "do you ship to Pune?"),
        ("and what about COD?", "what about COD?"),
        ("one more thing - is it vegan?", "is it vegan?"),
        ("aur exchange kaise hota hai?", "exchange kaise hota hai?"),
        ("acha, delivery kitne din mein?", "delivery kitne din mein?"),
        ("Okkk, also #2840 kahan hai", "#2840 kahan hai"),
        ("btw, is there a student discount", "is there a student discount"),
        ("and one more - is express delivery available in Goa?", "is express delivery available in Goa?"),
        ("quick question: do you ship to Goa?", "do you ship to Goa?"),
        # session 36 (v32, in-sample): "ok fine," and a doubled "fine fine." before the question
        ("ok fine, wapsi ka rule batao", "wapsi ka rule batao"),
        ("fine fine. the mrp you show, is gst in it?", "the mrp you show, is gst in it?"),
        # session 42 (v43, in-sample): "ok then," before the question
        ("okay then, do you take amex cards?", "do you take amex cards?"),
        ("acha phir, exchange free hai?", "exchange free hai?"),
        # session 43 (v46, in-sample): "ok jo bhi," / "whatever," before the question
        ("ok jo bhi, net banking chalega?", "net banking chalega?"),
        ("whatever. do you ship to port blair?", "do you ship to port blair?"),
        # session 47 (v52, v50, in-sample): a correction of the question just answered
        ("no I meant all the way to Perth", "all the way to Perth"),
        ("nahi mera matlab, express wala kitne ka hai", "express wala kitne ka hai"),
    ],
)
def test_leading_markers_are_cut_off(markers, text, question):
    found, cut = markers.split(text)
    assert found and text[cut:] == question


@pytest.mark.parametrize(
    "text",
    ["ok", "and", "ok and", "acha laga", "ok bye", "plus size available?", "thank you, that helps",
     "what about COD?", "so soft, loved it", "one more kurta in M please", "fine thanks", "ok ok", "fine by me",
     "jo bhi aapko theek lage"],
)
def test_messages_without_a_follow_up_stay_whole(markers, text):
    assert markers.split(text) == ([], 0)


def pipeline(tmp_path, intents=("ask_question", "affirm")):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("follow_ups")
    context = ExecutionContext(graph_schema=None, model_id="test")
    config = {"settings_path": SETTINGS}
    component = FollowUpQuestion.create(config, storage, resource, context)
    component.train(TrainingData([Message(data={"text": f"example {i}", "intent": i}) for i in intents]))
    return (FollowUpQuestion.load(config, storage, resource, context),
            CustomerText.create({}, storage, Resource("customer_text"), context))


def test_the_classifier_sees_the_question_and_the_tracker_keeps_the_customer_text(tmp_path):
    follow_up, customer_text = pipeline(tmp_path)
    text = "ok and is M available in the blue kurta?"
    [message] = follow_up.process([Message(data={"text": text})])
    assert message.get("text") == "is M available in the blue kurta?"  # what the classifier reads
    # an entity found in the shortened text ...
    start = message.get("text").index("M")
    message.set("entities", [{"entity": "size", "value": "M", "start": start, "end": start + 1}])
    [message] = customer_text.process([message])
    # ... points at the customer's own words afterwards
    assert message.get("text") == text
    [entity] = message.get("entities")
    assert text[entity["start"]:entity["end"]] == "M"
    output = message.as_dict(only_output_properties=True)
    assert output["question"] == "is M available in the blue kurta?"
    assert output[FOLLOW_UP_KEY] == {"markers": ["ok and"]}


def test_a_message_without_markers_is_untouched(tmp_path):
    follow_up, customer_text = pipeline(tmp_path)
    [message] = customer_text.process(follow_up.process([Message(data={"text": "ok bye"})]))
    assert message.get("text") == "ok bye"
    assert "question" not in message.as_dict(only_output_properties=True)


def test_does_nothing_on_another_data_set(tmp_path):
    follow_up, _ = pipeline(tmp_path, intents=("alarm_set", "weather_query"))
    [message] = follow_up.process([Message(data={"text": "ok and what's the weather"})])
    assert message.get("text") == "ok and what's the weather"


def test_a_message_of_thousands_of_markers_is_read_once_not_once_per_marker(markers, monkeypatch):
    # A hostile or pasted message must cost time in proportion to its length: each marker looks only at
    # the few words a marker can span (before, every marker re-read the whole rest: 85 s CPU for 5,000).
    from components import phrases

    words_normalised = 0
    real_squeeze = phrases.squeeze

    def counting_squeeze(word):
        nonlocal words_normalised
        words_normalised += 1
        return real_squeeze(word)

    monkeypatch.setattr(phrases, "squeeze", counting_squeeze)
    repeats = 2000
    found, cut = markers.split("ok and " * repeats + "is it vegan?")
    assert len(found) == repeats and cut == len("ok and " * repeats)
    assert words_normalised < 20 * repeats  # linear; the old way normalised about 2 * repeats**2 words


# A leading clause that only puts the order number off (escalation.yml `follow_ups.asides`).
@pytest.mark.parametrize(
    "text, question",
    [("I don't have the order number on me, do you ship to Shillong?", "do you ship to Shillong?"),
     ("order number abhi nahi hai mere paas, exchange free hai kya?", "exchange free hai kya?"),
     ("will send the number in a bit. btw is cod available above 5000?", "is cod available above 5000?"),
     ("can't find the order number. also how long is the return window", "how long is the return window")],
)
def test_an_aside_about_the_order_number_is_cut_off(markers, text, question):
    assert text[markers.split(text)[1]:] == question


@pytest.mark.parametrize(
    "text",
    ["I don't have the number", "dont have the order number 58231, where is it", "number baad me bhejti hu",
     "i dont have the number right now but can you check by phone", "👍", "", "!!", "ok and"],
)
def test_an_aside_alone_or_with_the_number_stays_whole(markers, text):
    assert markers.split(text)[1] == 0


# What the knowledge base searches (bench/kb_benchmark.py's replay and the conversation labelled set read it too).
@pytest.mark.parametrize(
    "text, question",
    [("ok and can I return it if it doesn't fit?", "can I return it if it doesn't fit?"),
     ("acha, aur cod pe extra lagta hai?", "cod pe extra lagta hai?"),
     ("is it vegan?", "is it vegan?"),
     ("ok and", "ok and")],
)
def test_question_of_drops_only_the_leading_markers(markers, text, question):
    assert markers.question_of(text) == question
