"""Pattern-3 topics recognised by what a message combines, from escalation.yml `topic_signals`.

The intent classifier reads a message by its overall likeness to the training examples. An urgent
delivery problem ("kal shaadi hai aur parcel abhi tak nahi aaya, please jaldi kuch karo") looks like an
order-status question, and a complaint about a repeated failure ("pichli baar exchange kiya tha toh
aapne phir se galat size bhej diya") looks like an exchange question; both then get a form or a
knowledge-base answer instead of a person. What makes them urgent or a complaint is a COMBINATION of
cues that no single example carries: a deadline plus a delivery problem, a repetition plus a failure,
or words of outrage. A rule names one or more cue groups; it fires when the message has a phrase of
EVERY group (whole words, case and punctuation ignored, repeated letters squeezed: "plzzz" = "plz").

A rule never fires on a hypothetical ("what if it doesn't arrive before the wedding?", "agar galat size
aaya toh?": `hypothetical` phrases), nor when a `not_when` phrase of the rule is there. The rules are
applied by KeywordEscalation (components/keyword_escalation.py) only over the classifier readings listed
in `override_intents`: a topic the classifier found itself, and a request for a person, stay.

A rule may also name an ordinary intent (session 27), for a combination that is NOT a topic although the
classifier reads one or falls back: a question about how a topic's action works ("how can i cancel…") is a
knowledge-base question, a request to write a caption is out of scope, one of two orders still on its way is
an order-status question. Such rules come after the topic rules, so a topic rule wins when both fire, and they
replace a topic the classifier read only when their `also_over` names it.

A rule may instead name the only classifier readings it decides over (`only_over`, session 46): "instalments for
the order asked about" turns an off-brand reading of "kishton me pay kar sakte? ₹3,400 ka bill banega" into the
payment question, but must leave an acknowledgement with the same word ("great, no cost emi works for me") alone.
For any other reading such a rule is skipped and the later rules are tried.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from components.designer_lists import confidence_setting
from components.phrases import PhraseList, phrase_strings, tokenize


@dataclass(frozen=True)
class TopicSignal:
    intent: str
    rule: str  # the rule's name in escalation.yml
    cues: Dict[str, str]  # cue group -> the phrase found
    # Topics the classifier read that this rule replaces too (`also_over`), besides the ordinary readings.
    also_over: Tuple[str, ...] = ()


_RULE_KEYS = ("intent", "name", "needs", "not_when", "also_over", "only_over")


class TopicRule:
    def __init__(self, raw: Dict[str, Any], where: str) -> None:
        if not isinstance(raw, dict):
            raise ValueError(f"{where} must be a mapping with `intent`, `name` and `needs`")
        unknown = set(raw) - set(_RULE_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} ({', '.join(_RULE_KEYS)})")
        self.intent = str(raw.get("intent") or "")
        self.name = str(raw.get("name") or "")
        if not self.intent or not self.name:
            raise ValueError(f"{where} needs an `intent` and a `name`")
        needs = raw.get("needs")
        if not isinstance(needs, dict) or not needs:
            raise ValueError(f"{where}.needs must map cue groups to lists of phrases")
        self.needs: List[Tuple[str, PhraseList]] = []
        for group, phrases in needs.items():
            listed = PhraseList(phrase_strings(phrases, f"{where}.needs.{group}"), squeezed=True)
            if not len(listed):
                raise ValueError(f"{where}.needs.{group} is empty")
            self.needs.append((str(group), listed))
        self.not_when = PhraseList(phrase_strings(raw.get("not_when"), f"{where}.not_when"), squeezed=True)
        self.also_over = tuple(phrase_strings(raw.get("also_over"), f"{where}.also_over"))
        if self.intent in self.also_over:
            raise ValueError(f"{where}.also_over must not name the rule's own intent {self.intent}")
        # The only classifier readings this rule decides over (empty: every reading the section lets rules decide).
        self.only_over = frozenset(phrase_strings(raw.get("only_over"), f"{where}.only_over"))
        if self.only_over and self.also_over:
            raise ValueError(f"{where}: give `only_over` or `also_over`, not both")
        # The topics the classifier found that this rule replaces: `also_over`'s, or one named in `only_over`.
        self.replaces = self.also_over or tuple(sorted(self.only_over))

    def applies_to(self, reading: Optional[str]) -> bool:
        """Whether the rule decides over this classifier reading (None: the reading is not known, every rule
        applies)."""
        return not self.only_over or reading is None or reading in self.only_over

    def match(self, words: List[str]) -> Optional[TopicSignal]:
        if self.not_when.find(words):
            return None
        found: Dict[str, str] = {}
        for group, phrases in self.needs:
            phrase = phrases.find(words)
            if phrase is None:
                return None
            found[group] = phrase
        return TopicSignal(intent=self.intent, rule=self.name, cues=found, also_over=self.replaces)


class TopicSignals:
    """The `topic_signals` section: rules in order, the first that fires wins."""

    def __init__(self, section: Optional[Dict[str, Any]]) -> None:
        where = "escalation.yml: topic_signals"
        section = section or {}
        self.override_intents = set(phrase_strings(section.get("override_intents"), f"{where}.override_intents"))
        self.hypothetical = PhraseList(phrase_strings(section.get("hypothetical"), f"{where}.hypothetical"),
                                       squeezed=True)
        # A classifier reading under this confidence is no reading: the rules decide over it, whatever intent it
        # names (`override_below`; 0 = only `override_intents`).
        self.override_below = confidence_setting(section, "override_below", where)
        rules = section.get("rules") or []
        if not isinstance(rules, list):
            raise ValueError(f"{where}.rules must be a list")
        self.rules = [TopicRule(rule, f"{where}.rules[{index}]") for index, rule in enumerate(rules)]
        if self.rules and not self.override_intents:
            raise ValueError(f"{where}.override_intents is empty: the rules would never apply")
        # The non-ordinary readings a rule may decide over: its own intent (to confirm it) and the topics it replaces.
        # Fixed once the rules are read; KeywordEscalation asks for every message.
        self.replaceable = frozenset(
            [rule.intent for rule in self.rules] + [intent for rule in self.rules for intent in rule.replaces])

    def overrides(self, intent: Optional[str], confidence: Optional[float]) -> bool:
        """The rules decide over this classifier reading: an ordinary intent, or any intent read with less
        confidence than `override_below`."""
        return intent in self.override_intents or (confidence is not None and confidence < self.override_below)

    def match(self, text: str, reading: Optional[str] = None) -> Optional[TopicSignal]:
        """The first rule that fires on `text` and decides over the classifier's `reading` (`only_over`)."""
        words = tokenize(text or "")
        if not words or self.hypothetical.find(words):
            return None
        for rule in self.rules:
            if not rule.applies_to(reading):
                continue
            signal = rule.match(words)
            if signal is not None:
                return signal
        return None
