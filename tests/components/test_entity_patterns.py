"""Order numbers the entity rules (nlp/entity_patterns.yml) take, and numbers they leave alone.

Built from the patterns file the project ships, with scripts/build_spacy_pipeline.py, as `make spacy` does.
"""
from __future__ import annotations

import importlib.util

import pytest

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
