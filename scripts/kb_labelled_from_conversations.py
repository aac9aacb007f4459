"""Turn the knowledge-base turns of USED-UP labelled conversations into a labelled set for the knowledge base
(data/kb_labelled/conversations.yml, named in data/knowledge_base.yml's `labelled_sets`).

A conversation set is used up once its first run is recorded (bench/README_conversations.md): from then on it is
development data, and its turns are the most realistic questions the project has, Hinglish, typos, follow-ups and
all. Each turn the bot should answer from an entry becomes a paraphrase of that entry, and each turn it should hand
off as not sure (low_confidence) an unanswerable question, read the way the knowledge base reads it (without a
leading "ok and": components/follow_ups.py, as bench/kb_benchmark.py's replay does).

Follow-ups are kept, labelled by the answer they need in their conversation ("how many days do i get?" after the
returns answer is a returns question). Measured out of sample in session 32 (two folds: the sets of one fold's
hold-outs left out, replayed with the follow-up rules), leaving them out gave more wrong answers than keeping them
(fold v20-v24: wrong 9 with them, 15 without those under 8 words, 19 without any).

Never name a split whose first run is not recorded: that is the fresh hold-out, and training on it makes its
measurement worthless. The main set's hold-out fifth (`holdout`) is refused for the same reason; only its `dev`
part can be named (`dev`).

    .venv/bin/python scripts/kb_labelled_from_conversations.py dev holdout2 holdout3 ... holdout25
    .venv/bin/python scripts/kb_labelled_from_conversations.py --check   # the shipped file is up to date

The splits used are written into the file's header, so `--check` (run by the tests) regenerates the same set and
fails when a conversation's label changed without regenerating.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if __name__ == "__main__":
    # Run as a script it needs no knowledge base loaded; imported (by the tests) it must not change the environment
    # of the process that imports it, whose action servers and actions read KB_PRELOAD.
    os.environ.setdefault("KB_PRELOAD", "0")

from bench import conversation_eval  # noqa: E402
from actions.knowledge_base import parse_entries, parse_labelled_set, parse_near_misses  # noqa: E402
from components.follow_ups import FollowUpMarkers  # noqa: E402

OUTPUT = ROOT / "data" / "kb_labelled" / "conversations.yml"
KB_FILE = ROOT / "data" / "knowledge_base.yml"
# Shorter texts say too little on their own to teach an entry ("kitna?", "aur return?"), though the follow-up
# rules answer them in context; measured in session 31's folds.
MIN_ANSWER_WORDS = 5
MIN_UNANSWERABLE_WORDS = 4
SPLITS_LINE = "# splits: "


class UsageError(Exception):
    """A split that is unknown, or must never be trained on."""


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def conversations_of(splits: Sequence[str]) -> List[conversation_eval.Conversation]:
    """The conversations of `splits`: `dev` (the main set's dev part) and used-up separate hold-outs."""
    found: List[conversation_eval.Conversation] = []
    for split in splits:
        if split == "dev":
            found += [c for c in conversation_eval.load_conversations() if c.split == "dev"]
        elif split in conversation_eval.SEPARATE_HOLDOUTS:
            found += conversation_eval.load_conversations(conversation_eval.SEPARATE_HOLDOUTS[split], fixed_split=split)
        elif split in ("holdout", "all"):
            raise UsageError(f"{split!r} includes the main set's hold-out fifth, which is never trained on; name 'dev'")
        else:
            raise UsageError(f"unknown split {split!r}: 'dev' or one of {', '.join(conversation_eval.SEPARATE_HOLDOUTS)}")
    return found


def texts_in_knowledge_base(kb_file: Path, leave_out: Path) -> Set[str]:
    """Normalised texts the knowledge base already learns from (questions, not_covered, near misses, labelled sets
    other than `leave_out`), read by the knowledge base's own parsers: a turn that repeats one adds nothing."""
    document = yaml.safe_load(kb_file.read_text(encoding="utf-8"))
    entries = parse_entries(document, str(kb_file))
    have: Set[str] = {_normal(text) for entry in entries for text in entry.questions + entry.not_covered}
    for name in document.get("labelled_sets") or []:
        path = (kb_file.parent / name).resolve()
        if path == leave_out.resolve() or not path.exists():
            continue
        by_entry, unanswerable = parse_labelled_set(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), entries)
        have |= {_normal(text) for questions in by_entry.values() for text in questions}
        have |= {_normal(text) for text in unanswerable}
    if document.get("near_misses"):
        near_file = kb_file.parent / document["near_misses"]
        near = parse_near_misses(yaml.safe_load(near_file.read_text(encoding="utf-8")), str(near_file), entries)
        have |= {_normal(text) for text in near}
    return have


def labelled_set(splits: Sequence[str], kb_file: Path = KB_FILE, output: Path = OUTPUT) -> Tuple[dict, Dict[str, int]]:
    """The labelled set ({paraphrases: [{text, entry_id}], unanswerable: [text]}) from the KB turns of `splits`,
    and counts of what was left out."""
    labels: Dict[str, Set[Optional[str]]] = defaultdict(set)
    text_of: Dict[str, str] = {}
    markers = FollowUpMarkers(yaml.safe_load((ROOT / "escalation.yml").read_text(encoding="utf-8"))["follow_ups"])
    for conversation in conversations_of(splits):
        for turn in conversation.turns:
            if turn.is_reaction:
                continue
            expect = turn.expect
            question = markers.question_of(turn.text).strip()
            words = len(_normal(question).split())
            if expect.kind == "answer" and words >= MIN_ANSWER_WORDS:
                label: Optional[str] = expect.value
            elif expect.is_handoff and expect.value == "low_confidence" and words >= MIN_UNANSWERABLE_WORDS:
                label = None
            else:
                continue
            key = _normal(question)
            labels[key].add(label)
            text_of.setdefault(key, question)
    have = texts_in_knowledge_base(kb_file, output)
    paraphrases: List[dict] = []
    unanswerable: List[str] = []
    left_out = {"conflicting": 0, "already in the knowledge base": 0}
    for key, found in labels.items():
        if len(found) > 1:
            left_out["conflicting"] += 1  # the same words labelled two ways (context decides): teaches nothing
            continue
        if key in have:
            left_out["already in the knowledge base"] += 1
            continue
        (label,) = found
        if label is None:
            unanswerable.append(text_of[key])
        else:
            paraphrases.append({"text": text_of[key], "entry_id": label})
    return {"paraphrases": paraphrases, "unanswerable": unanswerable}, left_out


def render(splits: Sequence[str], content: dict) -> str:
    header = [
        "# GENERATED by scripts/kb_labelled_from_conversations.py from the labelled conversations of used-up sets; do",
        "# not edit by hand (change the conversation's label, then regenerate). Each turn the bot should answer from an",
        "# entry is a paraphrase of that entry; each turn it should hand off as not sure is unanswerable. Follow-ups are",
        "# labelled by the answer they need in their conversation. The fresh hold-out is never among the splits.",
        f"{SPLITS_LINE}{' '.join(splits)}",
    ]
    body = yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=1000)
    return "\n".join(header) + "\n" + body


def shipped_splits(output: Path = OUTPUT) -> List[str]:
    for line in output.read_text(encoding="utf-8").splitlines():
        if line.startswith(SPLITS_LINE):
            return line[len(SPLITS_LINE):].split()
    raise UsageError(f"{output}: no '{SPLITS_LINE.strip()}' line in its header")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("splits", nargs="*", help="dev and used-up hold-outs (holdout2 ...)")
    parser.add_argument("--check", action="store_true", help="fail when the shipped file is not what its splits give")
    args = parser.parse_args(argv)
    try:
        splits = shipped_splits() if args.check else args.splits
        if not splits:
            parser.error("name the splits, or --check")
        content, left_out = labelled_set(splits)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return check_or_write(OUTPUT, render(splits, content), args.check, splits, Path(__file__).name,
                          f"{len(content['paraphrases'])} paraphrases, {len(content['unanswerable'])} "
                          f"unanswerable from {len(splits)} splits; left out: {left_out}")


def check_or_write(output: Path, text: str, check: bool, splits: Sequence[str], script: str, summary: str) -> int:
    """`--check`: 0 when `output` holds exactly `text`, else 1 with the command that regenerates it. Otherwise writes
    `text` to `output` and prints `summary`. Shared by the scripts that generate a file from used-up splits."""
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    if check:
        if output.read_text(encoding="utf-8") != text:
            print(f"{shown} is out of date: regenerate it with\n"
                  f"  .venv/bin/python scripts/{script} {' '.join(splits)}", file=sys.stderr)
            return 1
        print(f"{shown} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"{shown}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
