"""The trained model still classifies messages it never saw: bench/data/nlu_holdout.yml (8 unseen messages per
intent, 16 intents, hard pairs on purpose) parsed by the shipped model, as the WhatsApp channel would.

A regression floor for the test command, not a target and not a tuning set: one message is 0.8 points, and the
figure was 0.94-0.95 when this floor was set (README, "NLU 3-fold cross-validation"). A retrain that loses
a whole intent, or a pipeline change that breaks the classifier, falls far below it. The full report that
data scientists read is `bash scripts/nlu_cross_validation.sh` (it trains its own models, so it is not part
of the test command).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROOT / "bench" / "data" / "nlu_holdout.yml"
MINIMUM_ACCURACY = 0.90  # the fallback ("nlu_fallback", a hand-off) counts as an error
MINIMUM_PER_INTENT = 5  # of 8: no intent may be mostly lost


def test_unseen_messages_are_classified_as_labelled(agent):
    examples = yaml.safe_load(HOLDOUT.read_text(encoding="utf-8"))["examples"]

    async def parse_all():
        return [await agent.parse_message(example["text"]) for example in examples]

    parses = asyncio.run(parse_all())
    errors = [(example["intent"], parse["intent"]["name"], example["text"])
              for example, parse in zip(examples, parses) if parse["intent"]["name"] != example["intent"]]
    accuracy = 1 - len(errors) / len(examples)
    right_per_intent = Counter(example["intent"] for example in examples)
    right_per_intent.subtract(Counter(expected for expected, _, _ in errors))
    print(f"\nNLU hold-out: {accuracy:.3f} of {len(examples)} messages; errors (expected -> predicted):")
    for expected, predicted, text in errors:
        print(f"  {expected} -> {predicted}: {text!r}")

    assert len(examples) == 128 and len(right_per_intent) == 16
    weakest = min(right_per_intent, key=right_per_intent.get)
    assert right_per_intent[weakest] >= MINIMUM_PER_INTENT, f"{weakest}: {right_per_intent[weakest]}/8 right"
    assert accuracy >= MINIMUM_ACCURACY, errors
