"""scripts/kb_labelled_from_conversations.py: the knowledge base learns from the KB turns of used-up conversation sets,
never from the fresh hold-out or the main set's hold-out fifth, and the shipped file is what its splits give."""
import importlib.util
import textwrap

import pytest
import yaml

from bench import conversation_eval
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location(
    "kb_labelled_from_conversations", PROJECT_ROOT / "scripts" / "kb_labelled_from_conversations.py"
)
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def test_the_shipped_set_is_what_its_splits_give(capsys, monkeypatch):
    # Every split's load_conversations reads the project's vocabulary (escalation.yml, the knowledge base) anew: the
    # same files ~30 times, about half of this test's time. Read once; a call with other arguments reads as before.
    vocabulary = conversation_eval.Vocabulary.from_project()
    read = conversation_eval.Vocabulary.from_project.__func__
    monkeypatch.setattr(conversation_eval.Vocabulary, "from_project", classmethod(
        lambda cls, *args, **kwargs: vocabulary if not args and not kwargs else read(cls, *args, **kwargs)))
    assert script.main(["--check"]) == 0, capsys.readouterr().err
    splits = script.shipped_splits()
    assert "dev" in splits and "holdout" not in splits and "all" not in splits
    assert set(splits) - {"dev"} <= set(conversation_eval.SEPARATE_HOLDOUTS)


def test_the_knowledge_base_names_the_conversation_set():
    document = yaml.safe_load((PROJECT_ROOT / "data" / "knowledge_base.yml").read_text(encoding="utf-8"))
    assert "kb_labelled/conversations.yml" in document["labelled_sets"]


@pytest.mark.parametrize("split, says", [
    ("holdout", "hold-out fifth"),
    ("all", "hold-out fifth"),
    ("holdout999", "unknown split"),
])
def test_splits_that_must_never_be_trained_on_are_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys,
                                                                                 split, says):
    output = tmp_path / "conversations.yml"
    monkeypatch.setattr(script, "OUTPUT", output)
    assert script.main(["dev", split]) == 2
    assert says in capsys.readouterr().err
    assert not output.exists()


CONVERSATIONS = """
conversations:
  - id: t-01
    language: en
    turns:
      - {user: "how do i send back a dress that does not fit", expect: {answer: returns}}
      - {user: "ok and how many days do i get for that", expect: {answer: returns}}
      - {user: "ok thanks", expect: {reply: acknowledge}}
  - id: t-02
    language: hinglish
    turns:
      - {user: "kya aap log gift wrapping karte ho order pe", expect: {handoff: {reason: low_confidence}}}
  - id: t-03
    language: en
    turns:
      - {user: "kitna?", expect: {handoff: {reason: low_confidence}}}
  - id: t-04
    language: en
    turns:
      - {user: "is it the same price in store and online", expect: {answer: pricing_offers}}
  - id: t-05
    language: en
    turns:
      - {user: "is it the same price in store and online", expect: {handoff: {reason: low_confidence}}}
"""


def test_answers_and_honest_hand_offs_become_labelled_questions(tmp_path, monkeypatch):
    folder = tmp_path / "holdout_v901"
    folder.mkdir()
    (folder / "t.yml").write_text(textwrap.dedent(CONVERSATIONS), encoding="utf-8")
    monkeypatch.setattr(conversation_eval, "SEPARATE_HOLDOUTS", {"holdout901": folder})
    content, left_out = script.labelled_set(["holdout901"], output=tmp_path / "out.yml")
    assert content["paraphrases"] == [
        {"text": "how do i send back a dress that does not fit", "entry_id": "returns"},
        # a follow-up, labelled by the answer it needs, read without its "ok and" as the knowledge base reads it
        {"text": "how many days do i get for that", "entry_id": "returns"},
    ]
    assert content["unanswerable"] == ["kya aap log gift wrapping karte ho order pe"]
    # "kitna?" says too little alone; the same words labelled two ways teach nothing
    assert left_out["conflicting"] == 1
