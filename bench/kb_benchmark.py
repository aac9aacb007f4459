"""Knowledge-base retrieval benchmark: accuracy on unseen paraphrases, the answer-threshold trade-off,
and search latency.

    .venv/bin/python bench/kb_benchmark.py [--kb data/knowledge_base.yml] [--eval bench/data/kb_paraphrases.yml]

Works on any KB file of the schema in data/knowledge_base.yml and any eval file with
`paraphrases: [{text, entry_id}]` and `unanswerable: [text]`. Prints a report; writes nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from actions.knowledge_base import KnowledgeBase  # noqa: E402
from actions.settings import settings  # noqa: E402


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", default=str(settings().kb_path))
    parser.add_argument("--eval", default=str(ROOT / "bench/data/kb_paraphrases.yml"))
    parser.add_argument("--latency-runs", type=int, default=500)
    args = parser.parse_args()

    started = time.perf_counter()
    kb = KnowledgeBase.from_yaml(args.kb, model=settings().kb_model)
    load_seconds = time.perf_counter() - started
    evaluation = yaml.safe_load(Path(args.eval).read_text(encoding="utf-8"))
    paraphrases = evaluation["paraphrases"]
    unanswerable = evaluation.get("unanswerable") or []

    ranked = [(p["entry_id"], kb.search(p["text"], k=3)) for p in paraphrases]
    top1 = sum(results[0][0] == expected for expected, results in ranked) / len(ranked)
    top3 = sum(expected in [r[0] for r in results] for expected, results in ranked) / len(ranked)
    unanswerable_best = [kb.search(text, k=1)[0][1] for text in unanswerable]

    threshold = settings().kb_answer_threshold
    print(f"Knowledge base: {args.kb} ({len(kb.active_entries)} active entries, indexed in {load_seconds:.1f}s)")
    print(f"Held-out paraphrases: {len(paraphrases)}, unanswerable questions: {len(unanswerable)}")
    print(f"Top-1 accuracy: {top1:.3f}   top-3 recall: {top3:.3f}")
    print()
    print("threshold  answered-correctly  answered-wrongly  unanswerable-handed-off")
    for candidate in [0.40, 0.45, 0.50, 0.55, 0.60, 0.65]:
        correct = sum(r[0][0] == e and r[0][1] >= candidate for e, r in ranked) / len(ranked)
        wrong = sum(r[0][0] != e and r[0][1] >= candidate for e, r in ranked) / len(ranked)
        rejected = sum(s < candidate for s in unanswerable_best) / max(1, len(unanswerable_best))
        marker = "  <- shipped (escalation.yml)" if abs(candidate - threshold) < 1e-9 else ""
        print(f"  {candidate:.2f}        {correct:.3f}              {wrong:.3f}             {rejected:.3f}{marker}")

    queries = [p["text"] for p in paraphrases] + list(unanswerable)
    for text in queries[:20]:  # warm-up
        kb.search(text)
    timings = []
    for run in range(args.latency_runs):
        text = queries[run % len(queries)]
        t0 = time.perf_counter()
        kb.search(text, k=3)
        timings.append((time.perf_counter() - t0) * 1000)
    print()
    print(f"search latency over {len(timings)} queries: p50 {statistics.median(timings):.1f} ms, "
          f"p95 {percentile(timings, 95):.1f} ms (target p95 <= 15 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
