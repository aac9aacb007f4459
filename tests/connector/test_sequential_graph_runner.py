"""The sequential graph runner against dask's, on small graphs: same outputs, same errors, and inputs that stand
in for nodes stop those nodes (and what only they need) from running."""
from __future__ import annotations

from typing import Any, Dict, List, Text

import pytest
from rasa.engine.exceptions import GraphComponentException, GraphRunError
from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage

from connectors.sequential_graph_runner import SequentialGraphRunner

CALLS: List[Text] = []


class Step(GraphComponent):
    """Adds its configured amount to the sum of what it needs; records that it ran."""

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        self.amount = config["amount"]
        self.name = name

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "Step":
        return cls(config, execution_context.node_name)

    def add(self, **parts: Any) -> int:
        CALLS.append(self.name)
        if self.amount == "fail":
            raise ValueError("this step fails")
        return sum(parts.values()) + self.amount


def node(amount: Any, **needs: Text) -> SchemaNode:
    return SchemaNode(needs=needs, uses=Step, constructor_name="create", fn="add", config={"amount": amount},
                      eager=True)


def diamond() -> GraphSchema:
    # source -> left, right -> joined -> final; `extra` hangs off an input, `unrelated` is never needed.
    return GraphSchema({
        "source": node(1, given="__number__"),
        "left": node(10, x="source"),
        "right": node(100, x="source"),
        "joined": node(1000, a="left", b="right"),
        "final": node(0, x="joined"),
        "extra": node(5, x="__number__"),
        "unrelated": node(7),
    })


def runners(schema: GraphSchema, tmp_path) -> Dict[Text, DaskGraphRunner]:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(schema, "model")
    return {"dask": DaskGraphRunner(schema, storage, context), "sequential": SequentialGraphRunner(schema, storage, context)}


def run_both(schema, tmp_path, **kwargs):
    outcome = {}
    for name, runner in runners(schema, tmp_path).items():
        CALLS.clear()
        outcome[name] = (runner.run(**kwargs), sorted(CALLS))
    return outcome


def test_outputs_and_the_nodes_that_ran_are_dasks(tmp_path):
    outcome = run_both(diamond(), tmp_path, inputs={"__number__": 2}, targets=["final", "extra"])
    # source 3, left 13, right 103, joined 1116; extra 7
    assert outcome["sequential"] == outcome["dask"]
    assert outcome["sequential"][0] == {"final": 1116, "extra": 7}
    assert "unrelated" not in outcome["sequential"][1]


def test_an_input_named_like_a_node_stands_in_for_it_and_what_only_it_needs_is_not_run(tmp_path):
    runner = runners(diamond(), tmp_path)["sequential"]
    CALLS.clear()
    assert runner.run(inputs={"__number__": 2, "left": 50}, targets=["joined"]) == {"joined": 50 + 103 + 1000}
    assert sorted(CALLS) == ["joined", "right", "source"]
    CALLS.clear()
    assert runner.run(inputs={"__number__": 2, "left": 50, "right": 60}, targets=["joined"]) == {"joined": 1110}
    assert CALLS == ["joined"]  # source is needed only by the two nodes the inputs replaced
    CALLS.clear()  # the same targets with other inputs get their own plan, not the cached one
    assert runner.run(inputs={"__number__": 2}, targets=["joined"]) == {"joined": 1116}
    assert sorted(CALLS) == ["joined", "left", "right", "source"]


def test_without_targets_the_schemas_targets_are_run(tmp_path):
    schema = diamond()
    schema.nodes["final"].is_target = True
    outcome = run_both(schema, tmp_path, inputs={"__number__": 1})
    assert outcome["sequential"] == outcome["dask"]
    assert outcome["sequential"][0] == {"final": 1114}


def test_a_missing_input_is_rasas_own_error(tmp_path):
    for runner in runners(diamond(), tmp_path).values():
        with pytest.raises(GraphRunError, match="Missing input to run node 'source'"):
            runner.run(inputs={}, targets=["final"])


def test_a_failing_component_fails_as_under_dask(tmp_path):
    schema = diamond()
    schema.nodes["right"] = node("fail", x="source")
    errors = {}
    for name, runner in runners(schema, tmp_path).items():
        with pytest.raises(GraphComponentException) as caught:
            runner.run(inputs={"__number__": 2}, targets=["final"])
        errors[name] = (type(caught.value), str(caught.value), type(caught.value.__cause__))
    assert errors["sequential"] == errors["dask"]


def test_an_input_value_that_names_a_node_is_refused_as_rasa_refuses_it(tmp_path):
    for runner in runners(diamond(), tmp_path).values():
        with pytest.raises(GraphRunError, match="clashes with a node name"):
            runner.run(inputs={"__number__": "left"}, targets=["final"])


def test_asking_for_something_the_graph_does_not_have_is_a_clear_error(tmp_path):
    runner = runners(diamond(), tmp_path)["sequential"]
    with pytest.raises(GraphRunError, match="'nowhere', which is neither a node of the graph nor an input"):
        runner.run(inputs={"__number__": 1}, targets=["nowhere"])


def test_installing_makes_rasa_load_models_on_the_sequential_runner(monkeypatch):
    import rasa.core.processor as processor

    from connectors import sequential_graph_runner

    # Both the runner name and the installed flag are put back afterwards: a flag left set over a restored
    # DaskGraphRunner would make a later install() in this worker a no-op, and its models load on dask.
    monkeypatch.setattr(processor, "DaskGraphRunner", DaskGraphRunner)
    monkeypatch.setattr(processor, sequential_graph_runner._INSTALLED_FLAG, False, raising=False)
    sequential_graph_runner.install()
    assert processor.DaskGraphRunner is SequentialGraphRunner
    sequential_graph_runner.install()  # twice is harmless
    assert processor.DaskGraphRunner is SequentialGraphRunner
