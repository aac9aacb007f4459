"""PhraseList looks phrases up by their first and last words; the answers are those of trying every phrase of the
list at every position (the code it replaced, kept here as the reference), for every designer list of
escalation.yml and every NLU example, squeezed and not."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from components.phrases import PhraseList, clauses, squeeze, tokenize

ROOT = Path(__file__).resolve().parents[2]


class ReferencePhraseList:
    """PhraseList before the lookup by first word: every phrase tried at every position, in list order."""

    def __init__(self, phrases, squeezed=False):
        self._squeezed = squeezed
        self._phrases = []
        for phrase in phrases:
            words = self._normal(tokenize(str(phrase)))
            if words:
                self._phrases.append((str(phrase), words))
        self._longest = max((len(needle) for _phrase, needle in self._phrases), default=0)

    def _normal(self, words):
        return tuple(squeeze(w) for w in words) if self._squeezed else tuple(words)

    def occurrences(self, words: Sequence[str]) -> List[Tuple[str, int, int]]:
        words = self._normal(words)
        found = []
        for phrase, needle in self._phrases:
            n = len(needle)
            for start in range(len(words) - n + 1):
                if words[start : start + n] == needle:
                    found.append((phrase, start, start + n))
        return found

    def find(self, words):
        for phrase, _start, _end in self.occurrences(words):
            return phrase
        return None

    def longest_at(self, words, start) -> Optional[Tuple[str, int]]:
        window = self._normal(words[start : start + self._longest])
        best = None
        for phrase, needle in self._phrases:
            end = start + len(needle)
            if window[: len(needle)] == needle and (best is None or end > best[1]):
                best = (phrase, end)
        return best

    def ending_at(self, words, end):
        words = self._normal(words)
        for phrase, needle in self._phrases:
            start = end - len(needle)
            if start >= 0 and words[start:end] == needle:
                return phrase
        return None


def designer_lists():
    """Every list of strings anywhere in escalation.yml."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            if node and all(isinstance(item, str) for item in node):
                found.append((where, node))
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    walk(yaml.safe_load((ROOT / "escalation.yml").read_text(encoding="utf-8")), "escalation")
    return found


@pytest.fixture(scope="module")
def word_lists():
    texts = [example.get("text") for example in load_data(str(ROOT / "data" / "nlu")).training_examples]
    texts += ["agent agent", "okkk okk ok", "no no no human", "please please", "", "  !! "]
    words = {tuple(tokenize(text)) for text in texts if text}
    words |= {tuple(clause) for text in texts if text for clause in clauses(text)}
    return sorted(words)


def test_the_lists_and_texts_are_there(word_lists):
    assert len(designer_lists()) > 20 and len(word_lists) > 1000


@pytest.mark.parametrize("squeezed", [False, True])
def test_every_lookup_answers_as_trying_every_phrase_did(word_lists, squeezed):
    lists = designer_lists()
    # Repeated phrases and phrases that differ only in spelling keep their order.
    lists.append(("repeats", ["agent", "human", "agent", "Agent!", "talk to agent", "agent please", "okkk", "ok"]))
    for where, phrases in lists:
        fast, slow = PhraseList(phrases, squeezed=squeezed), ReferencePhraseList(phrases, squeezed=squeezed)
        for index, words in enumerate(word_lists):
            words = list(words)
            assert fast.occurrences(words) == slow.occurrences(words), (where, words)
            assert fast.find(words) == slow.find(words), (where, words)
            if index % 3:
                continue  # every position of a third of the texts
            for position in range(len(words) + 2):
                assert fast.longest_at(words, position) == slow.longest_at(words, position), (where, words, position)
                assert fast.ending_at(words, position) == slow.ending_at(words, position), (where, words, position)


def test_plain_ascii_text_skips_the_emoji_scan_with_the_same_answer(word_lists):
    # components/acknowledgements.py answers emoji_list / replace_emoji for ASCII text without the scan.
    import emoji

    from components import acknowledgements

    assert all(not symbol.isascii() for symbol in emoji.EMOJI_DATA)
    texts = [example.get("text") for example in load_data(str(ROOT / "data" / "nlu")).training_examples]
    texts += ["ok :) ;-) <3 :+1: #1 *", "", "   ", "thik hai 👍🏽", "ok ✌", "©"]
    assert sum(text.isascii() for text in texts) > 1000
    for text in texts:
        assert acknowledgements.emoji_list(text) == emoji.emoji_list(text), text
        for replacement in (" ", ", "):
            assert acknowledgements.replace_emoji(text, replacement) == emoji.replace_emoji(text, replacement), text
