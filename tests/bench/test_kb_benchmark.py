"""bench/kb_benchmark.py: which sets it reports on (no knowledge base is loaded here)."""
from argparse import Namespace

from bench import kb_benchmark


def test_dev_reports_each_dev_set_then_all_together_and_never_the_test_set():
    sets = kb_benchmark.eval_sets(Namespace(dev=True, conversations=None, eval="unused"))
    names = [name for name, _ in sets]
    assert names == [*kb_benchmark.DEV_FILES, "bench/conversations (dev split)", "all dev sets together"]
    assert kb_benchmark.TEST_FILE not in names
    # The default --eval is the newest TEST set in bench/data/ (a set is measured once before and once after a round).
    newest = max((kb_benchmark.ROOT / "bench" / "data").glob("kb_test_v*.yml"), key=lambda p: int(p.stem.split("_v")[1]))
    assert kb_benchmark.TEST_FILE == str(newest.relative_to(kb_benchmark.ROOT))
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


def _conversation(*turns):
    from bench.conversation_eval import Conversation, Expectation, Turn

    return Conversation(id="c1", language="en", source="t.yml", turns=tuple(
        Turn(expect=Expectation(kind, value), text=text) for text, kind, value in turns
    ))


def test_follow_up_replay_counts_only_turns_right_after_a_kb_answer(monkeypatch):
    decided = {"exchange kaise karu": "exchanges", "kitne din tak?": "shipping", "koi charge?": None,
               "store in pune?": "returns", "ok thanks": "never asked", "how do i wash it": "care_washing"}
    seen = []

    def decision(kb, config, events, question):
        seen.append([e["event"] for e in events])
        return decided[question], None

    monkeypatch.setattr(kb_benchmark, "kb_decision", decision)
    conversation = _conversation(
        ("exchange kaise karu", "answer", "exchanges"),
        ("kitne din tak?", "answer", "exchanges"),      # after an answer: wrong entry
        ("koi charge?", "answer", "exchanges"),         # after an answer: handed off (needless)
        ("store in pune?", "handoff", "low_confidence"),  # after a hand-off: not counted
        ("ok thanks", "reply", "acknowledge"),          # the NLU's: ends the run, never asked
        ("how do i wash it", "answer", "care_washing"),  # after a non-KB turn: not counted
    )
    counts, failures = kb_benchmark.follow_up_replay(None, None, [conversation])
    assert counts == {"turns": 2, "right": 0, "wrong": 1, "needless": 1, "missed": 0}
    assert len(failures) == 2 and "expected exchanges, got shipping" in failures[0]
    assert seen[-1] == ["user"]  # the turn after "ok thanks" starts a new run of events


def test_made_up_switches_count_answers_kept_on_the_previous_entry(monkeypatch):
    from types import SimpleNamespace

    kb = SimpleNamespace(active_entries=[SimpleNamespace(id="returns", questions=("how do i return",)),
                                         SimpleNamespace(id="shipping", questions=("how long is delivery",))])
    # the rules keep everything on the previous entry: every pair is a switch lost
    monkeypatch.setattr(kb_benchmark, "kb_decision", lambda kb, config, events, question: (
        events[1]["value"]["entry_id"], "previous_question"))
    kept, pairs, examples = kb_benchmark.made_up_switches(kb, None, [("kitne din?", "shipping"), ("refund?", "returns")])
    assert (kept, pairs) == (2, 2) and "after returns" in examples[0]
