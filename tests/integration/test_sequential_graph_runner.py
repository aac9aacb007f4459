"""On the shipped model, the sequential graph runner parses and predicts exactly as Rasa's dask runner does.

connectors/sequential_graph_runner.py replaces dask's scheduler for serving. Here one loaded model's nodes are run
by both runners: the parse of NLU examples in English and Hinglish (intent, ranking, entities, every key the
components add) and the next action at every step of the test and training stories (with the TED skip of
rasa_speedups, which runs the graph twice per prediction with policy outputs as inputs).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.nlu.training_data.loading import load_data

from connectors.sequential_graph_runner import SequentialGraphRunner
from tests.integration.test_outranked_policies import prediction_points, summary

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def dask_twin(runner: SequentialGraphRunner) -> DaskGraphRunner:
    """Rasa's own runner over the very same loaded nodes."""
    twin = DaskGraphRunner.__new__(DaskGraphRunner)
    twin._graph_schema, twin._instantiated_nodes = runner._graph_schema, runner._instantiated_nodes
    twin._execution_context = runner._execution_context
    return twin


def sample_texts(every: int = 4):
    examples = load_data(str(ROOT / "data" / "nlu")).intent_examples
    texts = sorted({example.get("text") for example in examples})
    return texts[::every] + ["👍", "agent nahi chahiye, bas COD charges batao", "asdfgh qwerty", "order #KL-48213 kahan hai"]


def test_the_server_loads_the_model_on_the_sequential_runner(agent):
    assert type(agent.processor.graph_runner) is SequentialGraphRunner


def test_every_parse_is_the_same_as_under_dask(agent):
    processor = agent.processor
    sequential = processor.graph_runner
    twin = dask_twin(sequential)
    texts = sample_texts()
    assert len(texts) > 300

    def parses(runner):
        processor.graph_runner = runner
        try:
            return [asyncio.run(processor.parse_message(UserMessage(text, sender_id="parse-check"))) for text in texts]
        finally:
            processor.graph_runner = sequential

    by_dask, by_sequence = parses(twin), parses(sequential)
    for text, expected, got in zip(texts, by_dask, by_sequence):
        assert got == expected, text


def test_every_story_step_is_predicted_the_same_as_under_dask(agent):
    processor = agent.processor
    sequential = processor.graph_runner
    twin = dask_twin(sequential)
    compared = 0
    for tracker in prediction_points(agent.domain):
        processor.graph_runner = twin
        try:
            expected = MessageProcessor._predict_next_with_tracker(processor, tracker.copy())
        finally:
            processor.graph_runner = sequential
        got = MessageProcessor._predict_next_with_tracker(processor, tracker.copy())
        assert summary(got) == summary(expected), tracker.sender_id
        compared += 1
    assert compared > 200
