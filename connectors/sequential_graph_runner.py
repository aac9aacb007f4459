"""Rasa's prediction graph run as a plain loop over its nodes, instead of through dask (a start-up speed-up).

Rasa 3.6 serves every parse and every next-action prediction through `DaskGraphRunner.run`: each call derives
the minimal sub-graph for its targets again (walking the whole schema), builds a dask task graph, and hands it to
dask's synchronous scheduler, which orders the tasks and runs them one after another on the calling thread. A
customer message makes about five such runs (one parse, two per next-action prediction with the TED skip of
`rasa_speedups.install_outranked_policies_skipped`); the bookkeeping around them was about 7 % of a Rasa
instance's event loop under the capacity benchmark (py-spy, bench/README_cluster.md, session 18), more than the
intent classifier's own arithmetic.

`SequentialGraphRunner` computes, once per set of targets and input names, the order in which the needed nodes
run (each after the nodes it needs), and then calls the same `GraphNode` objects in that order with the same
arguments dask would pass them: `(name, value)` pairs of the nodes they need, inputs given as `(name, value)`, and the bare name of anything
that is neither (the node then reports the missing input, as it does under dask). A
node named in the inputs is not run (its input stands in for it, as in dask), nor is anything needed only by
it. Errors are Rasa's own: a component's exception propagates as raised, a `RuntimeError` becomes Rasa's
`GraphRunError`, an input whose value names a node is refused as Rasa refuses it.

Only serving uses it: `install()` swaps the runner class that `MessageProcessor` loads models with. Training and
`rasa test` keep dask. tests/integration/test_sequential_graph_runner.py checks that parses and predictions are
identical to dask's on the shipped model.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Text, Tuple

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

logger = logging.getLogger(__name__)

# One step of a plan: a node's name and the names of what it needs, in the order of its `needs` mapping.
Step = Tuple[Text, Tuple[Text, ...]]


class SequentialGraphRunner(DaskGraphRunner):
    """A `DaskGraphRunner` whose `run` calls the graph's nodes in a cached order on the calling thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: Dict[Tuple[Tuple[Text, ...], FrozenSet[Text]], Tuple[List[Step], FrozenSet[Text]]] = {}

    def run(self, inputs: Optional[Dict[Text, Any]] = None, targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        """Runs the graph (see `GraphRunner.run`): the outputs of `targets` (default: the schema's targets)."""
        run_targets = list(targets) if targets else list(self._graph_schema.target_names)
        inputs = inputs or {}
        steps, node_names = self._plan(run_targets, frozenset(inputs))
        for input_name, input_value in inputs.items():
            if isinstance(input_value, str) and input_value in node_names:
                raise GraphRunError(
                    f"Input value '{input_value}' clashes with a node name. Make sure that none of the input "
                    f"names passed to the `run` method are the same as node names in the graph schema."
                )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(f"Running graph with inputs: {inputs}, targets: {targets} and {self._execution_context}.")
        results: Dict[Text, Any] = {name: (name, value) for name, value in inputs.items()}
        nodes = self._instantiated_nodes
        try:
            for node_name, needs in steps:
                results[node_name] = nodes[node_name](*[results.get(need, need) for need in needs])
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(results[target] for target in run_targets)

    def _plan(self, targets: Sequence[Text], input_names: FrozenSet[Text]) -> Tuple[List[Step], FrozenSet[Text]]:
        key = (tuple(targets), input_names)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._new_plan(targets, input_names)
        return plan

    def _new_plan(self, targets: Sequence[Text], input_names: FrozenSet[Text]) -> Tuple[List[Step], FrozenSet[Text]]:
        """The nodes the targets need, each after everything it needs; inputs cut the graph where they stand."""
        schema = self._graph_schema.minimal_graph_schema(list(targets))
        steps: List[Step] = []
        placed = set(input_names)
        visiting: set = set()

        def place(name: Text, needed_by: Optional[Text]) -> None:
            if name in placed:
                return
            if name not in schema.nodes:
                if needed_by is None:
                    raise GraphRunError(
                        f"The run asks for '{name}', which is neither a node of the graph nor an input of this run "
                        f"(inputs: {sorted(input_names)})."
                    )
                return  # as in dask, the needing node gets the bare name and reports the missing input itself
            if name in visiting:
                raise GraphRunError(f"The graph has a cycle through node '{name}'.")
            visiting.add(name)
            needs = tuple(schema.nodes[name].needs.values())
            for need in needs:
                place(need, name)
            visiting.discard(name)
            placed.add(name)
            steps.append((name, needs))

        for target in targets:
            place(target, None)
        return steps, frozenset(schema.nodes)


_INSTALLED_FLAG = "_kesar_lane_sequential_runner_installed"


def install() -> None:
    """Models that the Rasa server loads from now on run on `SequentialGraphRunner`."""
    import rasa.core.processor as processor

    if getattr(processor, _INSTALLED_FLAG, False):
        return
    processor.DaskGraphRunner = SequentialGraphRunner  # the name MessageProcessor._load_model passes to the loader
    setattr(processor, _INSTALLED_FLAG, True)
    logger.debug("Rasa runs its prediction graph sequentially, without dask's scheduler")
