"""Is any customer text of a fresh test set copied from the project? The check a blind writer and the lead run
before a fresh hold-out (bench/conversations/holdout_vN/) or KB TEST set (bench/fresh/kb_test_vN.yml) is committed.

    .venv/bin/python bench/collision_check.py NEW_PATH... [--project /work/main]

NEW_PATH is a folder of conversation files or a KB TEST file (or several). The project's texts are every file
`git ls-files` lists plus every file under data/ (generated labelled data included), read as UTF-8 (binaries
skipped), except the new set's own files. Every customer message (a conversation turn's `user:`, a KB TEST
paraphrase or unanswerable question) is compared under four tokenisations, because each hides a different kind of
copy: lowercased [0-9a-z₹]+ runs (punctuation is a space: "where's" is two words); whitespace words with all
punctuation deleted; whitespace words with edge punctuation stripped; raw whitespace words (an emoji is a word). A
message of exactly four words found as a run in a project text is flagged, and so is any run of five consecutive words
it shares with one. Inside the new set, identical messages and five-word runs shared by two messages are flagged too.

Only the new set's own flagged messages and the shared run of their own words are printed, never project text, so a
writer who must not read the training data can run it. Exit status 1 when anything is flagged, 0 when nothing is,
2 on bad input. The project's own copy test (tests/bench/test_conversation_eval.py) is stricter in one way: it also
compares whole messages after dropping their emoji, so run it as well.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Sequence, Set, Tuple

import yaml

EDGE_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
RUN = 5  # consecutive words that make a shared run
WHOLE = 4  # a message of exactly this many words is flagged when it is a run of a project text


def letters_and_digits(text: str) -> List[str]:
    return re.findall(r"[0-9a-z₹]+", text.lower())


def whole_words(text: str) -> List[str]:
    return [word for word in (re.sub(r"[^\w₹\s]", "", w) for w in text.lower().split()) if word]


def stripped_words(text: str) -> List[str]:
    return [word for word in (w.strip(EDGE_PUNCTUATION) for w in text.lower().split()) if word]


def raw_words(text: str) -> List[str]:
    return text.lower().split()


TOKENISATIONS: Tuple[Callable[[str], List[str]], ...] = (letters_and_digits, whole_words, stripped_words, raw_words)


def customer_texts(path: Path) -> List[str]:
    """The customer messages of one conversation file or KB TEST file; ValueError if it is neither."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: neither a conversation file (conversations:) nor a KB TEST file (paraphrases:)")
    texts: List[str] = []
    for conversation in data.get("conversations") or []:
        for turn in conversation.get("turns") or []:
            if isinstance(turn.get("user"), str):
                texts.append(turn["user"])
    for key in ("paraphrases", "unanswerable"):
        for item in data.get(key) or []:
            texts.append(item["text"] if isinstance(item, dict) else str(item))
    if not texts and not {"conversations", "paraphrases", "unanswerable"} & set(data):
        raise ValueError(f"{path}: neither a conversation file (conversations:) nor a KB TEST file (paraphrases:)")
    return texts


def new_set_files(paths: Sequence[Path]) -> List[Path]:
    files: List[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.yml") if p.name != "reply_kinds.yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    if not files:
        raise ValueError("no conversation or KB TEST files among the paths given")
    return files


def project_files(project: Path, excluded: Set[Path]) -> List[Path]:
    listed = subprocess.run(["git", "-C", str(project), "ls-files", "-z"], capture_output=True, text=True, check=True)
    relative = {name for name in listed.stdout.split("\0") if name}
    data = project / "data"
    if data.is_dir():
        relative |= {str(p.relative_to(project)) for p in data.rglob("*") if p.is_file()}
    files = [(project / name).resolve() for name in sorted(relative)]
    return [path for path in files if path.is_file() and path not in excluded]


def project_runs(files: Iterable[Path]) -> Tuple[int, List[Set[Tuple[str, ...]]], List[Set[Tuple[str, ...]]]]:
    """(files read, WHOLE-word runs per tokenisation, RUN-word runs per tokenisation)."""
    wholes: List[Set[Tuple[str, ...]]] = [set() for _ in TOKENISATIONS]
    runs: List[Set[Tuple[str, ...]]] = [set() for _ in TOKENISATIONS]
    read = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a binary or an unreadable file holds no customer wording
        read += 1
        for index, tokenise in enumerate(TOKENISATIONS):
            words = tokenise(text)
            for start in range(len(words) - WHOLE + 1):
                wholes[index].add(tuple(words[start:start + WHOLE]))
                if start + RUN <= len(words):
                    runs[index].add(tuple(words[start:start + RUN]))
    return read, wholes, runs


def flagged_against_project(texts: Sequence[Tuple[str, str]], wholes, runs) -> Dict[Tuple[str, str], List[str]]:
    flagged: Dict[Tuple[str, str], List[str]] = {}
    for source, text in texts:
        hits: List[str] = []
        for index, tokenise in enumerate(TOKENISATIONS):
            words = tokenise(text)
            if len(words) == WHOLE and tuple(words) in wholes[index]:
                hits.append(f"tokenisation {index + 1}: the whole message")
            for start in range(len(words) - RUN + 1):
                if tuple(words[start:start + RUN]) in runs[index]:
                    hits.append(f"tokenisation {index + 1}: " + " ".join(words[start:start + RUN]))
        if hits:
            flagged[(source, text)] = sorted(set(hits))
    return flagged


def flagged_inside(texts: Sequence[Tuple[str, str]]) -> List[str]:
    problems: List[str] = []
    seen: Dict[Tuple[str, ...], str] = {}
    owners: Dict[Tuple[str, ...], Set[int]] = {}
    for position, (source, text) in enumerate(texts):
        words = tuple(letters_and_digits(text))
        if words in seen:
            problems.append(f"identical to a message of {seen[words]}: {source}: {text!r}")
        seen.setdefault(words, source)
        for start in range(len(words) - RUN + 1):
            owners.setdefault(words[start:start + RUN], set()).add(position)
    for run, positions in sorted(owners.items()):
        if len(positions) > 1:
            problems.append(f"a five-word run of {len(positions)} messages: {' '.join(run)}")
    return problems


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("new", nargs="+", type=Path, help="the new set's folder(s) or KB TEST file(s)")
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    try:
        files = [path.resolve() for path in new_set_files(args.new)]
        texts = [(path.name, text) for path in files for text in customer_texts(path)]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    read, wholes, runs = project_runs(project_files(args.project.resolve(), set(files)))
    against_project = flagged_against_project(texts, wholes, runs)
    inside = flagged_inside(texts)
    for (source, text), hits in against_project.items():
        print(f"FLAGGED {source}: {text!r}")
        for hit in hits[:4]:
            print(f"    {hit}")
    for problem in inside:
        print(f"INSIDE THE SET {problem}")
    print(f"{len(texts)} customer texts of {len(files)} files against {read} project files: "
          f"{len(against_project)} flagged against the project, {len(inside)} inside the set")
    return 1 if against_project or inside else 0


if __name__ == "__main__":
    sys.exit(main())
