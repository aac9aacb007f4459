"""escalation.yml mistakes fail at start-up with a message that names the setting."""
from __future__ import annotations

import copy

import pytest
import yaml

from actions.settings import PROJECT_ROOT, SettingsError, parse_settings

SHIPPED = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text())


def broken(mutate):
    document = copy.deepcopy(SHIPPED)
    mutate(document)
    return document


def test_shipped_settings_parse():
    settings = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml")
    assert settings.turn_limit == 3
    assert {"refund", "complaint", "urgent"} <= {route.topic for route in settings.topics.values()}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["unresolved_turns"].update(limit=0), "unresolved_turns.limit"),
        (lambda d: d["topics"]["complaint"].update(priority="critical"), "priority must be one of"),
        (lambda d: d["knowledge_base"].update(answer_threshold=1.5), "between 0 and 1"),
        (lambda d: d["messages"].pop("assigned"), "missing `assigned`"),
        (lambda d: d["messages"]["intro"]["topic"].pop("refund"), "no text for topic 'refund'"),
        (lambda d: d.pop("human_request"), "missing `human_request`"),
        (lambda d: d["knowledge_base"].update(precision="fp16"), "precision must be float or int8"),
    ],
)
def test_bad_settings_name_the_problem(mutate, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(broken(mutate), PROJECT_ROOT / "escalation.yml")


def test_follow_up_keeps_topic_is_on_by_default_and_false_turns_it_off():
    shipped = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml").kb_follow_up_keeps_topic
    assert shipped is not None and shipped.max_words >= 1 and 0 < shipped.max_probability <= 1 and shipped.max_odds >= 1
    left_out = broken(lambda d: d["knowledge_base"].pop("follow_up_keeps_topic"))
    assert parse_settings(left_out, PROJECT_ROOT / "escalation.yml").kb_follow_up_keeps_topic is not None
    off = broken(lambda d: d["knowledge_base"].update(follow_up_keeps_topic=False))
    assert parse_settings(off, PROJECT_ROOT / "escalation.yml").kb_follow_up_keeps_topic is None
    partial = broken(lambda d: d["knowledge_base"].update(follow_up_keeps_topic={"max_words": 3}))
    kept = parse_settings(partial, PROJECT_ROOT / "escalation.yml").kb_follow_up_keeps_topic
    assert kept.max_words == 3 and kept.max_odds > 1


@pytest.mark.parametrize(
    "value, message",
    [
        ({"max_words": 0}, "max_words must be a whole number"),
        ({"max_probability": 1.5}, "max_probability must be a number above 0"),
        ({"max_odds": 0.5}, "max_odds must be a number >= 1"),
        ({"max_word": 4}, "unknown key"),
        ("yes", "must be false or a mapping"),
    ],
)
def test_bad_follow_up_keeps_topic_names_the_problem(value, message):
    document = broken(lambda d: d["knowledge_base"].update(follow_up_keeps_topic=value))
    with pytest.raises(SettingsError, match=f"follow_up_keeps_topic.*{message}|{message}"):
        parse_settings(document, PROJECT_ROOT / "escalation.yml")


def test_elliptical_follow_ups_are_on_as_shipped_and_false_turns_them_off():
    shipped = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml").kb_elliptical_follow_ups
    assert shipped is not None and shipped.max_words == 6 and shipped.min_share == 0.01
    off = broken(lambda d: d["knowledge_base"].update(elliptical_follow_ups=False))
    assert parse_settings(off, PROJECT_ROOT / "escalation.yml").kb_elliptical_follow_ups is None
    partial = broken(lambda d: d["knowledge_base"].update(elliptical_follow_ups={"max_words": 5}))
    kept = parse_settings(partial, PROJECT_ROOT / "escalation.yml").kb_elliptical_follow_ups
    assert kept.max_words == 5 and kept.min_share == 0.01 and kept.not_topic_words == ()
    # Session 36: a near miss of the entry just answered is judged alone, as shipped; no limit unless a designer sets one.
    assert shipped.max_near_miss_share == 0.75 and kept.max_near_miss_share is None
    assert shipped.near_miss_min_words == 3 and kept.near_miss_min_words == 3
    assert "too" in shipped.not_topic_words and "cod" not in shipped.not_topic_words
    assert ("care_washing", ("press", "istri", "dhoye", "dhoya", "dhona", "dhulai")) in shipped.topic_words
    assert kept.topic_words == ()
    # Fallback rescue (session 21): on as shipped for the question intent only; off unless a designer says so.
    assert shipped.rescue_fallbacks is True and shipped.rescue_intents == ("ask_question",)
    assert 0 < shipped.rescue_max_hand_off_confidence <= 1
    assert kept.rescue_fallbacks is False and kept.rescue_intents == ("ask_question",)
    # Session 25: any fallback the knowledge base is sure of, on as shipped, off unless a designer says so.
    assert shipped.rescue_min_probability == 0.8 and kept.rescue_min_probability is None


@pytest.mark.parametrize(
    "value, message",
    [
        ({"max_words": True}, "max_words must be a whole number"),
        ({"min_share": 1.0}, "min_share must be a number from 0"),
        ({"min_share": "low"}, "min_share must be a number from 0"),
        ({"max_near_miss_share": 0}, "max_near_miss_share must be a number above 0 and at most 1"),
        ({"max_near_miss_share": 1.2}, "max_near_miss_share must be a number above 0 and at most 1"),
        ({"max_near_miss_share": True}, "max_near_miss_share must be a number above 0 and at most 1"),
        ({"near_miss_min_words": 0}, "near_miss_min_words must be a whole number of at least 1"),
        ({"near_miss_min_words": 2.5}, "near_miss_min_words must be a whole number of at least 1"),
        ({"not_topic_words": "too"}, "not_topic_words must be a list of single words"),
        ({"not_topic_words": ["too much"]}, "not_topic_words"),
        ({"topic_words": ["press"]}, "topic_words must map knowledge-base entry ids"),
        ({"topic_words": {"care_washing": "press"}}, "topic_words.care_washing must be a list of single words"),
        ({"topic_words": {"care_washing": ["press"]}, "not_topic_words": ["press"]},
         "press cannot be both a topic word and in not_topic_words"),
        ({"max_odds": 30}, "unknown key"),
        ([8], "must be false or a mapping with max_words, min_share, max_near_miss_share, near_miss_min_words, not_topic_words"),
        ({"rescue_fallbacks": "yes"}, "rescue_fallbacks must be true or false"),
        ({"rescue_fallbacks": True, "rescue_intents": []}, "rescue_intents must name at least one intent"),
        ({"rescue_intents": "ask_question"}, "rescue_intents must be a list of single words"),
        ({"rescue_intents": ["ask_question", "request_human"]}, "request_human always hand off"),
        ({"rescue_intents": ["complaint"]}, "complaint always hand off"),
        ({"rescue_max_hand_off_confidence": 0}, "rescue_max_hand_off_confidence must be a number above 0"),
        ({"rescue_max_hand_off_confidence": True}, "rescue_max_hand_off_confidence must be a number above 0"),
        ({"rescue_min_probability": 1.5}, "rescue_min_probability must be a number above 0 and at most 1"),
        ({"rescue_min_probability": "high"}, "rescue_min_probability must be a number above 0 and at most 1"),
        ({"rescue_min_probability": 0.3}, r"rescue_min_probability \(0.3\) must be at least answer_threshold"),
    ],
)
def test_bad_elliptical_follow_ups_names_the_problem(value, message):
    document = broken(lambda d: d["knowledge_base"].update(elliptical_follow_ups=value))
    with pytest.raises(SettingsError, match=f"elliptical_follow_ups.*{message}"):
        parse_settings(document, PROJECT_ROOT / "escalation.yml")


def test_question_sentences_are_on_as_shipped_and_false_turns_them_off():
    shipped = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml").kb_question_sentences
    assert shipped is not None and shipped.min_words == 3
    assert "just tell me" in shipped.lead_ins and "is" in shipped.question_words  # lower-cased, as written
    off = broken(lambda d: d["knowledge_base"].update(question_sentences=False))
    assert parse_settings(off, PROJECT_ROOT / "escalation.yml").kb_question_sentences is None


@pytest.mark.parametrize(
    "value, message",
    [
        ({"min_words": 0}, "min_words must be a whole number >= 1"),
        ({"min_words": 2.5}, "min_words must be a whole number >= 1"),
        ({"max_words": 4}, "unknown key"),
        ("on", "must be false or a mapping with min_words"),
        ({"question_words": "is"}, "question_words must be a list of single words"),
        ({"question_words": ["is there"]}, "question_words must be a list of single words"),
        ({"lead_ins": ["just tell me", ""]}, "lead_ins must be a list of phrases"),
        ({"lead_ins": [3]}, "lead_ins must be a list of phrases"),
    ],
)
def test_bad_question_sentences_names_the_problem(value, message):
    document = broken(lambda d: d["knowledge_base"].update(question_sentences=value))
    with pytest.raises(SettingsError, match=f"question_sentences.*{message}"):
        parse_settings(document, PROJECT_ROOT / "escalation.yml")


def test_detail_follow_ups_are_on_as_shipped_and_false_turns_them_off():
    shipped = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml").kb_detail_follow_ups
    assert shipped is not None and any("email" in asked and has == "@" for asked, has in shipped.details)
    assert "complaints" in shipped.switches
    off = broken(lambda d: d["knowledge_base"].update(detail_follow_ups=False))
    assert parse_settings(off, PROJECT_ROOT / "escalation.yml").kb_detail_follow_ups is None


@pytest.mark.parametrize(
    "value, message",
    [
        ({"details": []}, "details must be a list"),
        ({"details": [{"asked": ["email"]}]}, "must have exactly `asked`"),
        ({"details": [{"asked": ["email"], "answer_has": " "}]}, "non-empty `answer_has`"),
        ({"details": [{"asked": ["email"], "answer_has": "@"}], "max_words": 0}, "max_words must be a whole number"),
        ({"details": [{"asked": ["email"], "answer_has": "@"}], "when": 1}, "unknown key"),
    ],
)
def test_bad_detail_follow_ups_names_the_problem(value, message):
    document = broken(lambda d: d["knowledge_base"].update(detail_follow_ups=value))
    with pytest.raises(SettingsError, match=f"detail_follow_ups.*{message}"):
        parse_settings(document, PROJECT_ROOT / "escalation.yml")


def test_refund_follow_ups_are_on_as_shipped_and_false_turns_them_off():
    shipped = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml").kb_refund_follow_ups
    assert shipped is not None and dict(shipped.entries).keys() == {"returns", "cancellation"}
    assert "cancel" in dict(shipped.entries)["returns"] and "refund" in shipped.cues
    off = broken(lambda d: d["knowledge_base"].update(refund_follow_ups=False))
    assert parse_settings(off, PROJECT_ROOT / "escalation.yml").kb_refund_follow_ups is None


@pytest.mark.parametrize(
    "value, message",
    [
        ({"entries": ["returns"], "cues": ["refund"]}, "entries must map knowledge-base entry ids"),
        ({"entries": {"returns": ["cancel"]}, "cues": []}, "cues must list at least one phrase"),
        ({"entries": {"returns": ["cancel"]}, "cues": ["refund"], "max_words": 0}, "max_words must be a whole number"),
        ({"entries": {"returns": "cancel"}, "cues": ["refund"]}, "entries.returns must be a list of phrases"),
        ({"entries": {"returns": []}, "cues": ["refund"], "when": 1}, "unknown key"),
    ],
)
def test_bad_refund_follow_ups_names_the_problem(value, message):
    document = broken(lambda d: d["knowledge_base"].update(refund_follow_ups=value))
    with pytest.raises(SettingsError, match=f"refund_follow_ups.*{message}"):
        parse_settings(document, PROJECT_ROOT / "escalation.yml")


def test_the_knowledge_base_encodes_with_the_precision_the_nlu_uses():
    # Equal precisions let the action server reuse the NLU's vector of a question instead of encoding it again.
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text())
    carrying = [c for c in config["pipeline"] if c.get("carry_embedding")]
    assert len(carrying) == 1
    settings = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml")
    assert settings.kb_precision == carrying[0].get("precision", "float")
    assert settings.kb_model == carrying[0]["model_name"]
