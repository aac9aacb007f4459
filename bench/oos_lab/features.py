"""Dump the exact features CalibratedIntentClassifier sees on each HWU64 split of the OOS benchmark.

Trains the shipped config.yml on a split's in-scope training data (as bench/oos_benchmark.py does),
captures the dense and sparse sentence features the classifier is trained on, parses every test
message and captures its features too. Later experiments then run on numpy arrays in seconds
instead of re-training Rasa for every idea.

    .venv/bin/python bench/oos_lab/features.py 0 1 2 3 4     # ~5 min on 2 cores
"""
from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
LAB_OUT = ROOT / "bench" / "out" / "oos_lab"

import oos_benchmark as benchmark  # noqa: E402  (needs the paths above)


def split_path(index: int) -> Path:
    return LAB_OUT / f"split{index}.pkl"


def read_result(path: Path, how_to_make: str) -> Dict:
    """A result an earlier lab step saved; a clear message naming the step if it is missing."""
    if not path.exists():
        raise SystemExit(f"{path} missing: run `{how_to_make}` first")
    with path.open("rb") as handle:
        return pickle.load(handle)


def load_split(index: int) -> Dict:
    """Features of split `index`: train_dense/train_blocks/train_intents/train_texts, test_* alike
    (test_gold is None for out-of-scope messages), and the shipped pipeline's own parse decisions."""
    return read_result(split_path(index), f".venv/bin/python bench/oos_lab/features.py {index}")


def _install_capture(captured: Dict) -> None:
    """Wrap the classifier's train/process so they record their inputs (same signatures, so Rasa's
    graph validation still sees the type annotations)."""
    import numpy as np
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from components import calibrated_confidence as cc

    original_train, original_process = cc.CalibratedIntentClassifier.train, cc.CalibratedIntentClassifier.process

    def train(self, training_data: TrainingData) -> Resource:
        featurizers = list(self._config["featurizers"])
        examples = [e for e in training_data.intent_examples if e.get("intent")]
        features = [cc.sentence_features(e, featurizers) for e in examples]
        self._sparse_dims = dict(sorted({o: m.shape[1] for _, parts in features for o, m in parts}.items()))
        captured["train"] = (
            [np.vstack(rows) for rows in zip(*(views for views, _ in features))],
            self._sparse_blocks([parts for _, parts in features]),
            [e.get("intent") for e in examples],
            [e.get("text") for e in examples],
        )
        return original_train(self, training_data)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            dense, parts = cc.sentence_features(message, list(self._config["featurizers"]))
            if dense:
                captured.setdefault("test", []).append((message.get("text"), dense, self._sparse_blocks([parts])))
        return original_process(self, messages)

    # This module's `from __future__ import annotations` leaves the hints above as strings that Rasa
    # would resolve in this module's globals, where the locally imported types are not: real types.
    train.__annotations__ = {"training_data": TrainingData, "return": Resource}
    process.__annotations__ = {"messages": List[Message], "return": List[Message]}
    cc.CalibratedIntentClassifier.train = train
    cc.CalibratedIntentClassifier.process = process


def dump(indices: List[int]) -> None:
    import numpy as np
    import scipy.sparse as sp

    benchmark.quiet_rasa()
    captured: Dict = {}
    _install_capture(captured)
    hwu64 = json.loads(benchmark.HWU64_PATH.read_text(encoding="utf-8"))
    LAB_OUT.mkdir(parents=True, exist_ok=True)
    for index in indices:
        captured.clear()
        train_rows, test_in, test_oos = benchmark.split_data(hwu64, benchmark.SPLITS[index])
        work = Path(tempfile.mkdtemp(prefix="oos_lab_"))
        # An empty training cache: a cached classifier would not be trained, and nothing captured.
        os.environ["RASA_CACHE_DIRECTORY"] = str(work / "rasa_cache")
        benchmark.write_nlu_yaml(train_rows, work / "nlu.yml")
        model_path, seconds = benchmark.train_model(benchmark.SHIPPED_CONFIG, work / "nlu.yml", work, f"split{index}")
        texts = [t for t, _ in test_in] + [t for t, _ in test_oos]
        parses, _ = asyncio.run(benchmark.parse_all(model_path, texts))
        tests = captured["test"][3:]  # parse_all warms up on the first three texts
        if [text for text, _, _ in tests] != texts:
            raise RuntimeError("captured test features are not in parse order")
        views, blocks, intents, train_texts = captured["train"]
        test_views = [np.vstack([d[k] for _, d, _ in tests]) for k in range(len(views))]
        result = {
            # One matrix per dense featurizer; "*_dense" is the first (the shipped sentence encoder).
            "train_views": views,
            "train_dense": views[0],
            "train_blocks": [sp.csr_matrix(b) for b in blocks],
            "train_intents": intents,
            "train_texts": train_texts,
            "test_views": test_views,
            "test_dense": test_views[0],
            "test_blocks": [sp.vstack([b[k] for _, _, b in tests]).tocsr() for k in range(len(blocks))],
            "test_texts": texts,
            "test_gold": [i for _, i in test_in] + [None] * len(test_oos),
            "shipped_decisions": [(p["intent"]["name"], benchmark.decision_inputs(p)) for p in parses],
        }
        with split_path(index).open("wb") as handle:
            pickle.dump(result, handle)
        print(f"split {index}: {len(intents)} training examples, trained in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    dump([int(arg) for arg in sys.argv[1:]] or list(range(len(benchmark.SPLITS))))
