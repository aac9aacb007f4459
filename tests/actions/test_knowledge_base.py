"""The KnowledgeBase API: schema checks with clear errors, and retrieval that benchmarks can use."""
from __future__ import annotations

import textwrap

import pytest
import yaml

from actions.knowledge_base import KnowledgeBase, KnowledgeBaseError
from actions.settings import PROJECT_ROOT


def write(tmp_path, text):
    path = tmp_path / "kb.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_kb_has_14_complete_entries(kb):
    assert len(kb.entries) == 14
    for entry in kb.entries:
        assert len(entry.questions) >= 8, entry.id
        assert entry.active and entry.answer.strip()


def test_search_ranks_best_first_with_comparable_scores(kb):
    results = kb.search("what is the size chart, i have a 36 inch chest", k=3)
    assert [entry_id for entry_id, _ in results][0] == "sizing"
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert len(results) == 3


def test_held_out_paraphrases_mostly_find_their_entry(kb):
    paraphrases = yaml.safe_load((PROJECT_ROOT / "bench/data/kb_paraphrases.yml").read_text())["paraphrases"]
    hits = sum(kb.search(p["text"], k=1)[0][0] == p["entry_id"] for p in paraphrases)
    assert hits / len(paraphrases) >= 0.85, f"top-1 retrieval {hits}/{len(paraphrases)}"


def test_empty_query_finds_nothing(kb):
    assert kb.search("   ") == []


def test_inactive_entries_are_never_returned(tmp_path, kb):
    path = write(tmp_path, """
        entries:
          - id: returns
            title: Returns
            answer: Free returns within 14 days.
            questions: [can I return it]
          - id: shipping
            title: Shipping
            answer: 4-7 days.
            questions: [how long is delivery]
            active: false
    """)
    small = KnowledgeBase.from_yaml(path, encoder=kb._encoder)
    assert [entry_id for entry_id, _ in small.search("how long is delivery", k=5)] == ["returns"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("entries: nope", "expected a mapping with an `entries:` list"),
        ("entries:\n  - id: Bad Id\n    title: t\n    answer: a\n    questions: [q]", "snake_case"),
        ("entries:\n  - id: a\n    title: t\n    answer: ''\n    questions: [q]", "`answer` must be a non-empty string"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: []", "`questions` must be a non-empty list"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]\n    link: kesarlane.in", "http(s) URL"),
        ("entries:\n  - id: a\n    title: t\n    answer: x\n    questions: [q]\n  - id: a\n    title: t\n    answer: x\n    questions: [q]", "duplicate entry id 'a'"),
        ("entries: [", "not valid YAML"),
    ],
)
def test_schema_errors_say_what_and_where(tmp_path, kb, body, message):
    with pytest.raises(KnowledgeBaseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        KnowledgeBase.from_yaml(write(tmp_path, body), encoder=kb._encoder)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="not found"):
        KnowledgeBase.from_yaml(tmp_path / "missing.yml")
