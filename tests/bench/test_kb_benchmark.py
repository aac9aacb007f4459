"""bench/kb_benchmark.py: which sets it reports on (no knowledge base is loaded here)."""
from argparse import Namespace

from bench import kb_benchmark


def test_dev_reports_each_dev_set_then_all_together_and_never_the_test_set():
    sets = kb_benchmark.eval_sets(Namespace(dev=True, conversations=None, eval="unused"))
    names = [name for name, _ in sets]
    assert names == [*kb_benchmark.DEV_FILES, "bench/conversations (dev split)", "all dev sets together"]
    assert kb_benchmark.TEST_FILE not in names and "kb_test_v4" in kb_benchmark.TEST_FILE  # the default --eval
    *each, (_, together) = sets
    for key in ("paraphrases", "unanswerable"):
        assert together[key] == [item for _, evaluation in each for item in evaluation.get(key) or []]
    assert len(together["paraphrases"]) > 300 and len(together["unanswerable"]) > 100


def test_outcomes_at_a_threshold():
    paraphrases = [("returns", ("returns", 0.9)), ("sizing", ("returns", 0.7)), ("shipping", ("shipping", 0.4))]
    unanswerable = [("pricing_offers", 0.6), ("sizing", 0.2)]
    assert kb_benchmark.outcomes(paraphrases, unanswerable, 0.55) == {
        "correct": 1 / 3, "wrong": 1 / 3, "handed_off": 1 / 2,
    }
