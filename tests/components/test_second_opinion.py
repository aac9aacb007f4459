"""The learnt second opinion (components/second_opinion.py): a request for a person or a pattern-3 topic in words no
phrase list has, read where the pipeline saw an ordinary message, and nothing else.

The component is trained here the way Rasa trains it, on a small labelled-turns file and the shipped encoders
(all-MiniLM-L6-v2 int8 and USE multilingual v3, both offline), and messages carry the two sentence features the
pipeline's featurizers would give them.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from actions.settings import PROJECT_ROOT
from components import second_opinion
from components.second_opinion import SECOND_OPINION_KEY, SecondOpinion

CONTEXT = ExecutionContext(graph_schema=None, model_id="test")
SHIPPED_CONFIG = next(item for item in yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())["pipeline"]
                      if item["name"] == "components.second_opinion.SecondOpinion")
ENCODERS = SHIPPED_CONFIG["encoders"]
INTENTS = ["ask_question", "order_status", "greet", "affirm", "request_human", "urgent_problem", "complaint",
           "request_refund", "cancel_order"]

# Small, clearly separated classes: enough for a confident logistic regression on two encoders.
TURNS = {
    "person": [
        "can a member of your staff take over this chat", "i would like a real person from your team please",
        "put someone from customer care on this", "mujhe aapke team ke kisi insaan se baat karni hai",
        "is there a human colleague who can help me", "please get me a person from support",
        "koi staff member se baat karao", "connect me with somebody who works there",
    ],
    "urgent": [
        "my face is burning and swollen after the serum", "rashes all over my cheeks since i used the cream",
        "the toner made my skin red and itchy", "cream lagane ke baad chehre pe jalan aur daane",
        "my eyes are stinging and watering after the gel", "skin peeling and painful after your face pack",
        "lotion se haathon pe laal dhabbe ho gaye", "the mask left my neck swollen and sore",
    ],
    "other": [
        "what is your return policy", "how long does shipping take", "do you have cotton kurtas",
        "which size should i pick for a 38 chest", "is cash on delivery available", "how do i wash linen",
        "kya aap international ship karte ho", "thank you so much", "ok got it", "hello there",
        "what payment methods do you accept", "how do loyalty points work", "is the serum vegan",
        "where do i see my order status", "exchange kaise hota hai", "do prices include gst",
    ],
}


def settings_file(tmp_path: Path, **second_opinion_settings) -> str:
    """The shipped escalation.yml with its `second_opinion` section replaced (None: the section removed)."""
    settings = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text(encoding="utf-8"))
    if second_opinion_settings.get("section", True) is None:
        settings.pop("second_opinion", None)
    else:
        settings["second_opinion"] = {**settings["second_opinion"], **second_opinion_settings}
    path = tmp_path / "escalation.yml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return str(path)


def turns_file(tmp_path: Path, turns=TURNS) -> str:
    path = tmp_path / "turns.yml"
    path.write_text(yaml.safe_dump({"turns": turns}, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def no_embedding_cache(monkeypatch):
    monkeypatch.setenv("KB_EMBEDDING_CACHE", "off")


@pytest.fixture(scope="module")
def storage_root(tmp_path_factory):
    return tmp_path_factory.mktemp("second_opinion_model")


def trained(tmp_path, settings, intents=INTENTS, turns=None, name="trained"):
    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    storage = LocalModelStorage(tmp_path / name)
    resource = Resource("SecondOpinion")
    config = {"settings_path": settings, "labelled_turns": turns or turns_file(tmp_path), "encoders": ENCODERS}
    component = SecondOpinion.create(config, storage, resource, CONTEXT)
    component.train(TrainingData([Message(data={"text": f"example {i}", "intent": i}) for i in intents]))
    return SecondOpinion.load(config, storage, resource, CONTEXT)


def classified(text, intent, confidence, **keys):
    """A message as the pipeline hands it over: its two sentence features and the reading so far."""
    message = Message(data={"text": text})
    vector = second_opinion.encode([text], ENCODERS, None)
    message.add_features(Features(vector[:, :384], "sentence", "text", "minilm"))
    message.add_features(Features(vector[:, 384:], "sentence", "text", "use_embedding"))
    message.set("intent", {"name": intent, "confidence": confidence})
    message.set("intent_ranking", [{"name": intent, "confidence": confidence},
                                   {"name": "order_status", "confidence": confidence / 2}])
    for key, value in keys.items():
        message.set(key, value)
    return message


@pytest.fixture(scope="module")
def component(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("shared")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KB_EMBEDDING_CACHE", "off")
        # A lower limit than shipped: eight examples a class make a sure but not a 0.95-sure classifier.
        return trained(tmp_path, settings_file(tmp_path, limit=0.6))


def reading(component, message):
    [message] = component.process([message])
    return message.get("intent")["name"], message.get(SECOND_OPINION_KEY)


def test_a_person_asked_for_in_new_words_is_read_as_a_request_for_a_person(component):
    intent, why = reading(component, classified("can somebody from your team come on this chat", "ask_question", 0.71))
    assert intent == "request_human"
    assert why["class"] == "person" and why["probability"] >= 0.6
    assert why["classifier_intent"] == {"name": "ask_question", "confidence": 0.71}


def test_a_skin_reaction_the_classifier_was_unsure_of_is_urgent(component):
    intent, why = reading(component, classified("after the night cream my cheeks are red and burning", "greet", 0.31))
    assert intent == "urgent_problem" and why["class"] == "urgent"


def test_an_ordinary_question_keeps_its_reading(component):
    intent, why = reading(component, classified("how many days do i have to return a dress", "ask_question", 0.9))
    assert (intent, why) == ("ask_question", None)


def test_a_sure_reading_outside_replaces_is_never_replaced(component):
    # greet at 0.95 is neither listed in `replaces` nor under `replaces_below`.
    intent, why = reading(component, classified("can somebody from your team come on this chat", "greet", 0.95))
    assert (intent, why) == ("greet", None)


@pytest.mark.parametrize("topic", ["complaint", "request_refund", "cancel_order", "request_human"])
def test_a_topic_or_person_the_classifier_is_sure_of_stays(component, topic):
    intent, why = reading(component, classified("after the night cream my cheeks are red and burning", topic, 0.8))
    assert (intent, why) == (topic, None)


@pytest.mark.parametrize("topic", ["complaint", "urgent_problem"])
def test_an_unsure_topic_is_confirmed_or_corrected_instead_of_a_not_sure_hand_off(component, topic):
    intent, why = reading(component, classified("after the night cream my cheeks are red and burning", topic, 0.35))
    assert intent == "urgent_problem" and why["classifier_intent"]["name"] == topic


@pytest.mark.parametrize("key", ["human_request_declined", "topic_signal", "acknowledgement", "still_looking",
                                 "human_request_match"])
def test_a_message_a_designer_rule_decided_keeps_its_reading(component, key):
    message = classified("can somebody from your team come on this chat", "ask_question", 0.71, **{key: {"rule": "x"}})
    assert reading(component, message) == ("ask_question", None)


def test_the_intent_it_gives_passes_the_fallback_threshold_and_is_no_ambiguity(component):
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

    pipeline = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())["pipeline"]
    [entry] = [item for item in pipeline if item["name"] == "FallbackClassifier"]
    fallback = FallbackClassifier({**FallbackClassifier.get_default_config(),
                                   **{k: v for k, v in entry.items() if k != "name"}})
    [message] = fallback.process(component.process([classified("put someone from your support team on this please",
                                                                "ask_question", 0.45)]))
    assert message.get("intent")["name"] == "request_human"


def test_turned_off_or_without_its_section_it_does_nothing(tmp_path):
    for settings in (settings_file(tmp_path, enabled=False, limit=0.6), settings_file(tmp_path, section=None)):
        component = trained(tmp_path, settings, name=Path(settings).name + str(id(settings)))
        message = classified("can somebody from your team come on this chat", "ask_question", 0.71)
        assert reading(component, message) == ("ask_question", None)


def test_the_limit_decides_and_is_read_from_escalation_yml(tmp_path, component):
    message = classified("can somebody from your team come on this chat", "ask_question", 0.71)
    sure = component.probabilities(np.hstack([f.features for f in message.features]))["person"]
    for limit, expected in ((min(sure + 0.01, 1.0), "ask_question"), (sure - 0.01, "request_human")):
        settings = settings_file(tmp_path, limit=round(limit, 6))
        strict = SecondOpinion(component._config | {"settings_path": settings}, component._model_storage,
                               component._resource, state=component._state,
                               weights={"coef": component._coef, "intercept": component._intercept})
        assert reading(strict, classified("can somebody from your team come on this chat", "ask_question", 0.71))[0] \
            == expected


def test_the_shipped_settings_are_strict():
    settings = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text(encoding="utf-8"))["second_opinion"]
    assert settings["enabled"] is True and settings["limit"] >= 0.9
    assert set(settings["replaces"]) == {"ask_question", "order_status"}


def test_training_data_without_the_person_and_topic_intents_trains_nothing(tmp_path, monkeypatch):
    # The out-of-scope benchmark trains config.yml on HWU64's intents: no encoding, no effect.
    message = classified("can somebody from your team come on this chat", "ask_question", 0.71)
    monkeypatch.setattr(second_opinion, "encode", lambda *args: pytest.fail("encoded turns for nothing"))
    component = trained(tmp_path, settings_file(tmp_path, limit=0.6), intents=["alarm_set", "weather_query"])
    assert not component.active
    assert reading(component, message) == ("ask_question", None)


def test_features_of_another_size_are_skipped_with_one_warning(component, caplog):
    message = Message(data={"text": "can somebody from your team come on this chat"})
    message.add_features(Features(np.ones((1, 384)), "sentence", "text", "minilm"))
    message.set("intent", {"name": "ask_question", "confidence": 0.7})
    with caplog.at_level(logging.WARNING):
        assert reading(component, message) == ("ask_question", None)
    assert "retrain" in caplog.text


@pytest.mark.parametrize("turns, says", [
    ({"person": ["get me a person"]}, "needs `other`"),
    ({"person": ["get me a person"], "other": ["hello"], "vip": ["gold tier"]}, "vip"),
    ({"person": [""], "other": ["hello"]}, "non-empty texts"),
])
def test_a_broken_turns_file_is_a_clear_error(tmp_path, turns, says):
    with pytest.raises(ValueError, match=says):
        trained(tmp_path, settings_file(tmp_path), turns=turns_file(tmp_path, turns))


def test_a_missing_turns_file_names_the_script_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="second_opinion_turns.py"):
        trained(tmp_path, settings_file(tmp_path), turns=str(tmp_path / "nowhere.yml"))


def test_replaces_may_not_name_a_topic_intent(tmp_path, component):
    settings = settings_file(tmp_path, replaces=["ask_question", "complaint"])
    with pytest.raises(ValueError, match="complaint"):
        SecondOpinion(component._config | {"settings_path": settings}, component._model_storage,
                      component._resource, state=component._state,
                      weights={"coef": component._coef, "intercept": component._intercept})


def test_editing_the_turns_retrains(tmp_path):
    path = Path(turns_file(tmp_path))
    before = SecondOpinion.fingerprint_addon({"labelled_turns": str(path)})
    path.write_text(yaml.safe_dump({"turns": {**TURNS, "other": TURNS["other"] + ["one more question"]}}))
    assert SecondOpinion.fingerprint_addon({"labelled_turns": str(path)}) != before


def test_the_embedding_cache_gives_the_same_vectors(tmp_path):
    texts = ["can somebody from your team come on this chat", "kal tak chahiye tha"]
    fresh = second_opinion.encode(texts, ENCODERS, None)
    cached_first = second_opinion.encode(texts, ENCODERS, tmp_path / "cache")
    cached_again = second_opinion.encode(texts, ENCODERS, tmp_path / "cache")
    assert np.array_equal(fresh, cached_first) and np.array_equal(fresh, cached_again)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
