"""scripts/second_opinion_turns.py: the second opinion learns from the customer turns of used-up conversation sets,
never from the fresh hold-out or the main set's hold-out fifth, and the shipped file is what its splits give."""
import importlib.util
import textwrap
from pathlib import Path

import pytest
import yaml

from bench import conversation_eval

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("second_opinion_turns", PROJECT_ROOT / "scripts" / "second_opinion_turns.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def test_the_shipped_turns_are_what_their_splits_give(capsys, monkeypatch):
    vocabulary = conversation_eval.Vocabulary.from_project()
    read = conversation_eval.Vocabulary.from_project.__func__
    monkeypatch.setattr(conversation_eval.Vocabulary, "from_project", classmethod(
        lambda cls, *args, **kwargs: vocabulary if not args and not kwargs else read(cls, *args, **kwargs)))
    assert script.main(["--check"]) == 0, capsys.readouterr().err
    splits = script.shipped_splits()
    assert "dev" in splits and "holdout" not in splits and "all" not in splits
    # The newest hold-out is the fresh one until its first run is recorded: never trained on.
    newest = list(conversation_eval.SEPARATE_HOLDOUTS)[-1]
    assert newest not in splits
    assert set(splits) - {"dev"} <= set(conversation_eval.SEPARATE_HOLDOUTS)


def test_config_yml_trains_the_second_opinion_on_the_shipped_file():
    pipeline = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    [entry] = [item for item in pipeline if item["name"] == "components.second_opinion.SecondOpinion"]
    assert (PROJECT_ROOT / entry["labelled_turns"]).resolve() == script.OUTPUT.resolve()


@pytest.mark.parametrize("split, says", [
    ("holdout", "hold-out fifth"),
    ("all", "hold-out fifth"),
    ("holdout999", "unknown split"),
])
def test_splits_that_must_never_be_trained_on_are_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys,
                                                                                 split, says):
    output = tmp_path / "turns.yml"
    monkeypatch.setattr(script, "OUTPUT", output)
    assert script.main(["dev", split]) == 2
    assert says in capsys.readouterr().err
    assert not output.exists()


CONVERSATIONS = """
conversations:
  - id: s-01
    language: en
    turns:
      - {user: "how do i send back a dress that does not fit", expect: {answer: returns}}
      - {user: "ok and can a real person call me about it", expect: {handoff: {reason: customer_request}}}
  - id: s-02
    language: hinglish
    turns:
      - {user: "cream lagate hi chehra laal ho gaya", expect: {handoff: {reason: topic, topic: urgent}}}
  - id: s-03
    language: en
    turns:
      - {user: "where is my parcel", expect: {reply: ask_order_number}}
      - {reaction: "👍", expect: {reply: silent}}
      - {user: "i want my money back for it", expect: {handoff: {reason: topic, topic: refund}}}
  - id: s-04
    language: en
    turns:
      - {user: "where is my parcel", expect: {handoff: {reason: topic, topic: urgent}}}
"""


def test_turns_get_the_class_of_their_label(tmp_path, monkeypatch):
    folder = tmp_path / "holdout_v999"
    folder.mkdir()
    (folder / "s.yml").write_text(textwrap.dedent(CONVERSATIONS), encoding="utf-8")
    monkeypatch.setitem(conversation_eval.SEPARATE_HOLDOUTS, "holdout999", folder)
    content, left_out = script.labelled_turns(["holdout999"])
    # The follow-up marker is cut as the pipeline cuts it; a reaction has no text; "where is my parcel" was
    # labelled two ways (the context decided) and teaches nothing.
    assert content == {
        "person": ["can a real person call me about it"],
        "refund": ["i want my money back for it"],
        "urgent": ["cream lagate hi chehra laal ho gaya"],
        "other": ["how do i send back a dress that does not fit"],
    }
    assert left_out == {"conflicting": 1}
    rendered = script.render(["holdout999"], content)
    assert "# splits: holdout999" in rendered and "counts: person 1, refund 1, urgent 1, other 1" in rendered
