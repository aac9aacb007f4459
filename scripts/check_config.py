"""Checks config.yml for values written twice that must agree; run by scripts/train.sh and `make validate`.

The fallback threshold appears twice: CalibratedIntentClassifier calibrates its confidence so that
`in_scope_coverage` of in-scope messages stay at or above its `threshold`, and FallbackClassifier hands
off below its own `threshold`. Rasa cannot share one value between two components, so an edit to one
and not the other would silently move escalation pattern 1's operating point.

The sentence encoders appear twice: components/second_opinion.py encodes its labelled turns with its `encoders`
list and reads the features of the pipeline's dense sentence featurizers; the two lists must name the same
encoders in the same order, or training and serving would see different vectors.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
CALIBRATED = "components.calibrated_confidence.CalibratedIntentClassifier"
FALLBACK = "FallbackClassifier"
FEATURIZER = "components.sentence_featurizer.SentenceEmbeddingFeaturizer"
SECOND_OPINION = "components.second_opinion.SecondOpinion"


def _threshold(pipeline: List[Dict[str, Any]], name: str) -> Optional[Any]:
    for component in pipeline:
        if isinstance(component, dict) and component.get("name") == name:
            return component.get("threshold")
    return None


def _encoders(pipeline: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    return [
        {"model_name": component.get("model_name"), "precision": component.get("precision", "float")}
        for component in pipeline
        if isinstance(component, dict) and component.get("name") == FEATURIZER
    ]


def problems(config_path: Path) -> List[str]:
    document = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    pipeline = document.get("pipeline") or []
    found = []
    calibrated, fallback = _threshold(pipeline, CALIBRATED), _threshold(pipeline, FALLBACK)
    if calibrated is not None and fallback is not None and calibrated != fallback:
        found.append(
            f"{config_path}: the fallback threshold is written twice and the two disagree: "
            f"{CALIBRATED} threshold {calibrated}, {FALLBACK} threshold {fallback}. "
            "Set both to the same value (the confidence is calibrated for the threshold it is compared with)."
        )
    for component in pipeline:
        if isinstance(component, dict) and component.get("name") == SECOND_OPINION:
            listed = [{"model_name": spec.get("model_name"), "precision": spec.get("precision", "float")}
                      for spec in component.get("encoders") or [] if isinstance(spec, dict)]
            featurizers = _encoders(pipeline)
            if listed != featurizers:
                found.append(
                    f"{config_path}: {SECOND_OPINION} `encoders` {listed} must be the pipeline's "
                    f"{FEATURIZER} instances in order {featurizers}: it encodes its training turns with them "
                    "and reads their features when serving."
                )
    return found


def main(argv: List[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "config.yml"
    found = problems(path)
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
