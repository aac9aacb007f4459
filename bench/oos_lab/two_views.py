"""Does a fine-tuned second view of the encoder meet the OOS targets, calibrated honestly?

Shipped evidence (classifier, neighbours, Mahalanobis, energy on the frozen encoder) plus the
tuned-space neighbour similarity of finetune.py, all z-scored with held-out statistics and averaged,
then calibrated on held-out scores exactly like components.in_scope_model. Prints the benchmark's
figures for the shipped model and for the two views, per split and as the mean.

    .venv/bin/python bench/oos_lab/two_views.py [--coverage 0.96 0.97]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import load_split  # noqa: E402  (also puts the project root on the path)
from evidence import (  # noqa: E402
    EVIDENCE_KINDS, calibrated_confidence, combine, figures, mean_figures, shipped_evidence,
)
from finetune import tuned_evidence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--coverage", type=float, nargs="*", default=[0.96])
    args = parser.parse_args()
    for coverage in args.coverage:
        rows = {"shipped": [], "two views": []}
        for index in args.splits:
            split, evidence, tuned = load_split(index), shipped_evidence(index), tuned_evidence(index)
            held, test = combine(evidence["held_out"], evidence["test"], EVIDENCE_KINDS)
            rows["shipped"].append(figures(split, evidence, calibrated_confidence(held, test, coverage)))
            held_out = dict(evidence["held_out"], tuned=tuned["held_out"])
            test_scores = dict(evidence["test"], tuned=tuned["test"])
            held, test = combine(held_out, test_scores, EVIDENCE_KINDS + ("tuned",))
            rows["two views"].append(figures(split, evidence, calibrated_confidence(held, test, coverage)))
            print(f"coverage {coverage} split {index}: " + "  ".join(
                f"{name}: " + " ".join(f"{k} {v:.3f}" for k, v in r[-1].items()) for name, r in rows.items()), flush=True)
        for name, r in rows.items():
            print(f"coverage {coverage} MEAN {name}: {mean_figures(r)}")


if __name__ == "__main__":
    main()
