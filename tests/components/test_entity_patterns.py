"""Order numbers the entity rules (nlp/entity_patterns.yml) take, and numbers they leave alone.

Built from the patterns file the project ships, with scripts/build_spacy_pipeline.py, as `make spacy` does.
"""
from __future__ import annotations

import importlib.util

import pytest
import yaml

from actions.conversation import normalize_order_number
from actions.settings import PROJECT_ROOT

BUILDER = PROJECT_ROOT / "scripts" / "build_spacy_pipeline.py"


@pytest.fixture(scope="module")
def nlp():
    spec = importlib.util.spec_from_file_location("build_spacy_pipeline", BUILDER)
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder.build(PROJECT_ROOT / "nlp" / "entity_patterns.yml")


def order_numbers(nlp, text):
    return [normalize_order_number(e.text) for e in nlp(text).ents if e.label_ == "order_number"]


@pytest.mark.parametrize(
    "text, number",
    [("#2840", "#2840"), ("# 4410 pls", "#4410"), ("order 2840", "#2840"), ("odr no 7741", "#7741"),
     ("order id 88213", "#88213"), ("my order ID: 88213", "#88213"), ("Order Id 5521 status?", "#5521"),
     ("the order number is 6672", "#6672"), ("order no. 9981", "#9981"), ("order num: 5521", "#5521"),
     ("order number - 3321", "#3321"), ("ordr no-7741 kab aayega", "#7741"), ("order#2840", "#2840"),
     ("order no 5519 cancel kardo", "#5519")],
)
def test_order_numbers_are_taken(nlp, text, number):
    assert order_numbers(nlp, text) == [number]


@pytest.mark.parametrize(
    "text",
    ["my order is 3 days late", "i ordered 300 pieces", "my order is 2 weeks late, paid 1499",
     "order no 12", "is cod available on orders above 5000"],
)
def test_other_numbers_are_not_order_numbers(nlp, text):
    assert order_numbers(nlp, text) == []


# Marketing consent (actions/consent.py): opt in only with an opt-in word and no opt-out word. Session 28: five of the
# opt-in examples in data/nlu/messaging.yml ("send me offers again", "offers fir se bhejo", "unstop") had no opt-in
# word the rules knew, so a customer asking for the offers back was told they were unsubscribed.
def opts_in(nlp, text):
    labels = {e.label_ for e in nlp(text).ents}
    return "opt_in" in labels and "opt_out" not in labels


def consent_examples():
    blocks = [b for b in yaml.safe_load((PROJECT_ROOT / "data" / "nlu" / "messaging.yml").read_text())["nlu"]
              if b["intent"] == "stop_messages"]
    first = [line[2:].strip() for line in blocks[0]["examples"].splitlines() if line.strip()]
    start = first.index("START")  # the file's convention: the opt-in examples follow START in the first list
    later = [line[2:].strip() for b in blocks[1:] for line in b["examples"].splitlines() if line.strip()]
    return [(text, False) for text in first[:start]] + [(text, True) for text in first[start:] + later]


@pytest.mark.parametrize("text, opted_in", consent_examples())
def test_every_consent_example_is_read_in_its_direction(nlp, text, opted_in):
    assert opts_in(nlp, text) == opted_in


@pytest.mark.parametrize("text, opted_in", [
    ("don't send me these again", False), ("phir se mat bhejna ye offers", False), ("never message me again", False),
    ("no more sale alerts", False), ("mujhe offer wale sms nahi chahiye", False),
    ("accidentally hit stop, send offers again", False),  # both: STOP, the safe reading
    ("sale updates dobara bhejo", True), ("offers wapas bhejo please", True), ("resume the offer messages", True),
])
def test_a_refusal_stays_stop_and_asking_again_opts_in(nlp, text, opted_in):
    assert opts_in(nlp, text) == opted_in
