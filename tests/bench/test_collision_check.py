"""bench/collision_check.py: a fresh set's customer text copied from a project text is flagged, in any of the four
tokenisations, and nothing of the project is printed. A throwaway git repository stands in for the project."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import collision_check as cc  # noqa: E402

PROJECT_TEXT = "- my parcel from the diwali sale still has not come home, please help\n- kya COD 👍 milega bhai\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data" / "nlu").mkdir(parents=True)
    (root / "data" / "nlu" / "orders.yml").write_text(PROJECT_TEXT, encoding="utf-8")
    (root / "README.md").write_text("A secret sentence that nobody should ever see printed here.\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "README.md"], check=True)  # data/ is read untracked too
    return root


def write_set(folder: Path, *messages: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    turns = "\n".join(f'      - {{user: "{m}", expect: {{reply: acknowledge}}}}' for m in messages)
    (folder / "h99_chitchat.yml").write_text(
        f"conversations:\n  - id: h99-c01\n    language: en\n    turns:\n{turns}\n", encoding="utf-8")
    return folder


def run(project: Path, *paths: Path, capsys) -> tuple:
    status = cc.main([*map(str, paths), "--project", str(project)])
    return status, capsys.readouterr().out


def test_a_fresh_set_in_its_own_words_passes(project, tmp_path, capsys):
    fresh = write_set(tmp_path / "fresh", "when will the kurta I bought reach me", "thanks a lot")
    status, out = run(project, fresh, capsys=capsys)
    assert status == 0
    assert "0 flagged against the project" in out and "against 2 project files" in out


def test_five_words_in_a_row_from_a_project_text_are_flagged_whatever_the_punctuation(project, tmp_path, capsys):
    fresh = write_set(tmp_path / "fresh", "hey, from the Diwali sale still... nothing came")
    status, out = run(project, fresh, capsys=capsys)
    assert status == 1
    assert "FLAGGED h99_chitchat.yml" in out and "from the diwali sale still" in out
    assert "secret" not in out and "please help" not in out  # only the new set's own words are printed


def test_a_four_word_message_that_is_a_project_run_is_flagged_with_its_emoji_as_a_word(project, tmp_path, capsys):
    fresh = write_set(tmp_path / "fresh", "COD 👍 milega bhai", "COD milega bhai yaar")
    status, out = run(project, fresh, capsys=capsys)
    assert status == 1
    assert "'COD 👍 milega bhai'" in out and "tokenisation 4: the whole message" in out
    assert "COD milega bhai yaar" not in out  # four words, but not a run of the project text


def test_copies_inside_the_new_set_are_flagged(project, tmp_path, capsys):
    fresh = write_set(tmp_path / "fresh", "ok thanks", "OK, thanks!", "is the rose mist fine near the eyes",
                      "tell me, is the rose mist fine on kids")
    status, out = run(project, fresh, capsys=capsys)
    assert status == 1
    assert "INSIDE THE SET identical" in out and "a five-word run of 2 messages: is the rose mist fine" in out


def test_a_file_that_is_no_test_set_is_a_clear_error(project, tmp_path, capsys):
    other = tmp_path / "notes.yml"
    other.write_text("just: a mapping\n", encoding="utf-8")
    status = cc.main([str(other), "--project", str(project)])
    assert status == 2 and "neither a conversation file" in capsys.readouterr().err
