""""Hold on, finding it in my email": a customer still looking for what the order form asked for.

Placed after Acknowledgements and before KeywordEscalation. Asked for their order number, customers on
WhatsApp often answer first that they are looking for it ("one sec", "hang on, checking my inbox", "ruko,
number dhoondh rahi hu"). The classifier reads such a message as anything: an order question, "no"
(which ended the form), "ok" (a resolution signal) or nothing at all (a low-confidence hand-off). None of
those is what the customer meant.

A message is "still looking" (escalation.yml `still_looking`) when it has no question mark, no number of
three or more digits and no `not_when` phrase (a dismissal, a question word), and it is
- made only of `leads` and `filler_words` ("one sec", "ek minute ruko"), or
- a lead with a `searching` phrase ("hold on, finding it"), or
- a searching phrase with one of `objects` ("checking my email for it", "number dhoondh raha hu"), or
- a lead with a `whereabouts` phrase, where the number is ("one moment, the invoice slip is in my other bag",
  "hold on, the number's on the payment receipt somewhere"; session 37). Only with a lead: "it's stuck somewhere"
  says nothing about looking.
A `not_when` phrase inside the searching phrase found is part of the search, not a question: "checking when it got
delivered" (searching "checking when", session 37) is still looking; "one sec, when will it come" is not.
A `looked_up` question word (session 47) is what the customer is looking up when the message has a lead AND a
searching phrase in the same clause: "hold on, beti se puchti hu exactly kab deliver hua tha", "ruko zara, basket me
kitna jud gaya woh dekhti hu" ("ek sec, dekhti hu. aur kab tak deliver hoga" asks a new question). Other `not_when`
phrases (a dismissal, "also", "does") still rule it out.
It then gets `intent` (order_status) with confidence 1.0 and the entity `still_looking`. Inside the order
form the form's validation accepts it (actions/orders.py), and the form says `still_looking` from
messages.yml instead of asking again (the re-ask count is kept). Outside the form the bot says "Sure, take your time" and waits
(data/rules/orders.yml). A message the classifier read as a request for a person keeps that reading, and
so does one it read as a pattern-3 topic with at least `keep_topics_from` confidence (a complaint at 0.62
for "ek minute, number dhundh rahi hu" is a misreading). KeywordEscalation, which runs after this
component, still forces a request for a person ("wait, let me talk to an agent") and its topic rules
still read the message ("hold on, looking for it, worst service ever" is a complaint).

The parse data says what happened: `still_looking: {"lead", "searching", "classifier_intent"}`.

The number found (escalation.yml `still_looking.number_given`, session 29): an order number sent with a few
words the classifier could not place ("ye lo 36681" after the form let go, "also order #82091, that's the
other one i placed" after the first number was noted) fell back and was handed off as "not sure". A message
whose classifier reading is under `below` (FallbackClassifier would fall back), with an `order_number` entity
or a bare run of `min_digits` or more digits, at most `max_words` words, no question mark and no `not_when`
phrase (money: "my total is 1850") gets `intent` too, without the `still_looking` entity: the form or the
order rule reads the number (data/rules/orders.yml). The parse data says `still_looking: {"number_given",
"classifier_intent"}`. The same readings stay, and the topic rules still read the message.

A yes with the number (`number_given.yes_intents`, session 36): "ok do it for 86114 please" right after the
cancellation answer is a yes the classifier is sure of, but a bare number is no `order_number` entity for the entity
rules (they need "#" or "order"), so the rule for a yes with an order number (action_go_ahead) never ran and the
customer got "Great!". Such a number, with the same limits (`max_words`, `not_when`, no "₹"), becomes the
`order_number` entity; the parse data says `still_looking: {"number_in_a_yes", "classifier_intent"}`. A yes that says
the number was found ("ok found it, 58247": a `named` phrase, session 46) is the number given instead (below).

The number put off till later (`put_off`, session 40): asked for the number, customers say when they will send it
instead ("its on my office laptop, will send once im back home tonight", "kal subah bhejti hu number", "it's on my
daughter's account, i'll get it from her later"). Read as anything (off-brand, "not sure"), that kept the form waiting
or handed off. A message with one of `put_off.promises` (sending or getting it) and one of `put_off.later` (a later
time), no question mark, no number, at most `put_off.max_words` words, none of `put_off.not_when` outside the promise and no reading
of `put_off.keep_intents` from `put_off.keep_from` on (a sure goodbye ends the form too) gets
`put_off.intent` (the endings' "no", which ends the order form, data/rules/orders.yml) with the entity `dismissal`:
outside the form that is a dropped topic, answered "No problem!" and a resolution signal (data/rules/chitchat.yml).
The same readings stay (a person, a sure topic). The parse data says `still_looking: {"put_off", "later",
"classifier_intent"}`.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Text, Tuple

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.acknowledgements import DISMISSAL_ENTITY, is_reaction
from components.designer_lists import (
    DesignerListComponent, confidence_setting, count_setting, load_section, set_intent, settings_path,
)
from components.follow_ups import CUSTOMER_TEXT_KEY
from components.phrases import PhraseList, phrase_strings, squeeze, tokenize

STILL_LOOKING_KEY = "still_looking"
# The entity the rules and the order form read (domain.yml `entities`).
STILL_LOOKING_ENTITY = "still_looking"
# The order number the entity rules find; a bare number in a yes becomes one too (`number_given.yes_intents`).
ORDER_NUMBER_ENTITY = "order_number"


def _has_order_number(entities: List[Dict[str, Any]]) -> bool:
    return any(entity.get("entity") == ORDER_NUMBER_ENTITY for entity in entities)


def _whole_message_entity(name: str, value: str, text: str, extractor: str) -> Dict[str, Any]:
    """An entity over the whole message, as the rules read `still_looking` and `dismissal`."""
    return {"entity": name, "value": value, "start": 0, "end": len(text), "confidence": 1.0, "extractor": extractor}


def _optional_rule(section: Any, where: str, keys: set) -> bool:
    """Whether a sub-rule of `still_looking` is on: absent or false is off; a mapping with only `keys` is on;
    anything else is a clear error."""
    if section is None or section is False:
        return False
    if not isinstance(section, dict):
        raise ValueError(f"{where} must be a mapping (or false to turn it off)")
    unknown = sorted(set(section) - keys)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return True


# An order number (or any number the form could take) in the message: the form reads it instead.
_A_NUMBER = re.compile(r"\d{3,}")
# Where a clause ends: what is looked up is said in the clause of the search.
_CLAUSE_ENDS = re.compile(r"[.,;:!?\n]+")


def _inside_one_of(start: int, end: int, spans: Sequence[Tuple[str, int, int]]) -> bool:
    """Whether words [start, end) lie inside one of the (phrase, start, end) occurrences: a `not_when` word that is
    part of a matched phrase ("will return to this later") does not veto it."""
    return any(s_start <= start and end <= s_end for _phrase, s_start, s_end in spans)


def _phrase_key(phrase: str) -> str:
    """A phrase as the lists compare it (words, repeated letters squeezed): "kab", "Kaab" and "kab " are one."""
    return squeeze(" ".join(tokenize(phrase)))


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class StillLooking(DesignerListComponent, IntentClassifier):
    SECTION = "still_looking"
    STATE_FILE = "still_looking.json"

    def configure(self, section: Dict[Text, Any]) -> None:
        where = f"escalation.yml `{self.SECTION}`"
        self.intent = str(section.get("intent") or "")
        if not self.intent:
            raise ValueError(f"{where} needs an `intent` (the order question's intent)")
        self.leads = PhraseList(phrase_strings(section.get("leads"), f"{where}.leads"), squeezed=True)
        self.searching = PhraseList(phrase_strings(section.get("searching"), f"{where}.searching"), squeezed=True)
        self.objects = PhraseList(phrase_strings(section.get("objects"), f"{where}.objects"), squeezed=True)
        self.whereabouts = PhraseList(phrase_strings(section.get("whereabouts") or [], f"{where}.whereabouts"),
                                      squeezed=True)
        self.not_when = PhraseList(phrase_strings(section.get("not_when"), f"{where}.not_when"), squeezed=True)
        self.looked_up = {_phrase_key(phrase)
                          for phrase in phrase_strings(section.get("looked_up") or [], f"{where}.looked_up")}
        not_when = {_phrase_key(phrase) for phrase in phrase_strings(section.get("not_when"), f"{where}.not_when")}
        if self.looked_up - not_when:
            raise ValueError(f"{where}.looked_up: {', '.join(sorted(self.looked_up - not_when))} not in `not_when` "
                             "(a looked-up word only lifts a `not_when` word)")
        for key, listed in (("leads", self.leads), ("searching", self.searching), ("objects", self.objects)):
            if not len(listed):
                raise ValueError(f"{where}.{key} must list at least one phrase")
        self.fillers = {squeeze(word) for phrase in phrase_strings(section.get("filler_words"), f"{where}.filler_words")
                        for word in tokenize(phrase)}
        self.max_words = count_setting(section, "max_words", where, default=12)
        self.keep_topics_from = confidence_setting(section, "keep_topics_from", where)
        # Readings that stay: a person or a pattern-3 topic is due whatever else the message says.
        path = settings_path(self._config["settings_path"])
        topics = load_section(path, "topics", type(self).__name__, optional=True)
        human = load_section(path, "human_request", type(self).__name__, optional=True)
        self.topic_intents = {name for name in topics if name != "urgent_markers"}
        self.person_intent = str(human.get("intent") or "")
        self._configure_number_given(section.get("number_given"), f"{where}.number_given")
        self._configure_put_off(section.get("put_off"), f"{where}.put_off")

    def _configure_put_off(self, section: Any, where: str) -> None:
        self.put_off: Optional[Dict[str, Any]] = None
        if not _optional_rule(section, where, {"intent", "max_words", "promises", "later", "not_when", "keep_intents",
                                                 "keep_from"}):
            return
        intent = str(section.get("intent") or "")
        if not intent:
            raise ValueError(f"{where} needs an `intent` (the one that ends the order form)")
        promises = PhraseList(phrase_strings(section.get("promises"), f"{where}.promises"), squeezed=True)
        later = PhraseList(phrase_strings(section.get("later"), f"{where}.later"), squeezed=True)
        for key, listed in (("promises", promises), ("later", later)):
            if not len(listed):
                raise ValueError(f"{where}.{key} must list at least one phrase")
        self.put_off = {
            "intent": intent,
            "max_words": count_setting(section, "max_words", where, default=20),
            "promises": promises,
            "later": later,
            "not_when": PhraseList(phrase_strings(section.get("not_when") or [], f"{where}.not_when"), squeezed=True),
            "keep_intents": set(phrase_strings(section.get("keep_intents") or [], f"{where}.keep_intents")),
            "keep_from": confidence_setting(section, "keep_from", where, default=0.8),
        }

    def _configure_number_given(self, section: Any, where: str) -> None:
        self.number_given: Optional[Dict[str, Any]] = None
        if not _optional_rule(section, where, {"below", "max_words", "min_digits", "not_when", "yes_intents", "named"}):
            return
        min_digits = count_setting(section, "min_digits", where, default=4)
        self.number_given = {
            "below": confidence_setting(section, "below", where, default=0.6),
            # a run of digits not part of a longer number, an amount ("1,850") or a decimal ("18.50")
            "bare_number": re.compile(rf"(?<![\d.,])\d{{{min_digits},}}(?![\d.,]*\d)"),
            "max_words": count_setting(section, "max_words", where, default=12),
            "not_when": PhraseList(phrase_strings(section.get("not_when"), f"{where}.not_when"), squeezed=True),
            "yes_intents": set(phrase_strings(section.get("yes_intents"), f"{where}.yes_intents")),
            "named": PhraseList(phrase_strings(section.get("named"), f"{where}.named")),
        }

    def _reading_stays(self, classified: Dict[str, Any]) -> bool:
        """A request for a person stays; so does a topic read with at least `keep_topics_from` confidence."""
        name = classified.get("name")
        if name and name == self.person_intent:
            return True
        return name in self.topic_intents and float(classified.get("confidence") or 0.0) >= self.keep_topics_from

    def required_intents(self) -> Iterable[Text]:
        return [self.intent] + ([self.put_off["intent"]] if self.put_off else [])

    def _put_off_reading_stays(self, classified: Dict[str, Any]) -> bool:
        """A reading of `put_off.keep_intents` (a goodbye) the classifier is sure of (`keep_from`) stays."""
        rule = self.put_off
        return (classified.get("name") in rule["keep_intents"]
                and float(classified.get("confidence") or 0.0) >= rule["keep_from"])

    def put_off_in(self, text: str) -> Optional[Dict[str, str]]:
        """{"put_off", "later"} when `text` says the number will come later (`put_off`), else None."""
        rule = self.put_off
        if rule is None or "?" in text or _A_NUMBER.search(text):
            return None
        words = tokenize(text)
        if not words or len(words) > rule["max_words"]:
            return None
        promises = rule["promises"].occurrences(words)
        # A `not_when` word inside the promise is part of it ("will return to this later" returns nothing).
        if any(not _inside_one_of(start, end, promises) for _phrase, start, end in rule["not_when"].occurrences(words)):
            return None
        later = rule["later"].find(words)
        return {"put_off": promises[0][0], "later": later} if promises and later else None

    def match(self, text: str) -> Optional[Dict[str, str]]:
        """{"lead", "searching"} when `text` says the customer is still looking, else None."""
        if "?" in text or _A_NUMBER.search(text):
            return None
        words = tokenize(text)
        if not words or len(words) > self.max_words:
            return None
        searches = self.searching.occurrences(words)
        lead = self.leads.find(words)
        # With a lead and a search, a question word says what is looked up ("hold on, puchti hu kab deliver hua tha").
        looking_up = (bool(self.looked_up) and lead is not None and bool(searches)
                      and self._looked_up_beside_a_search(text))
        if any(not _inside_one_of(start, end, searches)
               and not (looking_up and _phrase_key(phrase) in self.looked_up)
               for phrase, start, end in self.not_when.occurrences(words)):
            return None
        only_leads = self.leads.covering(words, self.fillers)
        if only_leads:
            return {"lead": only_leads[0], "searching": ""}
        if not searches:
            whereabouts = self.whereabouts.find(words) if lead is not None else None
            return {"lead": lead, "searching": "", "whereabouts": whereabouts} if whereabouts else None
        if lead is not None or self.objects.find(words) is not None:
            return {"lead": lead or "", "searching": searches[0][0]}
        return None

    def _looked_up_beside_a_search(self, text: str) -> bool:
        """Every `looked_up` word of `text` stands in a clause with a searching phrase: "ek sec, dekhti hu. aur kab tak
        deliver hoga" asks a new question after the search."""
        for clause in _CLAUSE_ENDS.split(text):
            words = tokenize(clause)
            if self.searching.find(words) is None and any(
                    _phrase_key(phrase) in self.looked_up
                    for phrase, _start, _end in self.not_when.occurrences(words)):
                return False
        return True

    def _few_words_and_no_money(self, text: str) -> bool:
        """`number_given`'s limits on the rest of a message with a number: at most `max_words` words, no "₹" and none
        of `not_when` (money, points, a pincode…)."""
        rule = self.number_given
        words = tokenize(text)
        return "₹" not in text and len(words) <= rule["max_words"] and rule["not_when"].find(words) is None

    def _said_as_the_number(self, text: str) -> bool:
        """The message says it gives the number: "ok the number is 44871", "ok found it, 58247" (`named`)."""
        return self.number_given["named"].find(tokenize(text)) is not None

    def number_given_in(self, text: str, entities: List[Dict[str, Any]], confidence: float) -> bool:
        """An order number with few other words, in a message the classifier could not place or that says it gives
        the number ("ok the number is 44871": `number_given.named`)."""
        rule = self.number_given
        if rule is None or "?" in text:
            return False
        if confidence >= rule["below"] and not self._said_as_the_number(text):
            return False
        if not (_has_order_number(entities) or rule["bare_number"].search(text)):
            return False
        return self._few_words_and_no_money(text)

    def number_in_a_yes(
        self, text: str, entities: List[Dict[str, Any]], classified: Dict[str, Any]
    ) -> Optional[re.Match]:
        """The bare number of a yes (`number_given.yes_intents`, read at `below` or more: an unsure one is the number
        given, above) that carries no order number entity yet, with few other words and none of `not_when`: "ok do it
        for 86114 please" right after the cancellation answer. None otherwise."""
        rule = self.number_given
        if rule is None or classified.get("name") not in rule["yes_intents"]:
            return None
        if float(classified.get("confidence") or 0.0) < rule["below"] or _has_order_number(entities):
            return None
        # Said as the number ("ok found it, 58247": `named`), it is the number given, whatever the yes around it.
        if self._said_as_the_number(text):
            return None
        return rule["bare_number"].search(text) if self._few_words_and_no_money(text) else None

    def process(self, messages: List[Message]) -> List[Message]:
        if self.active is False:
            return messages
        for message in messages:
            if is_reaction(message):
                continue
            classified = message.get(INTENT) or {}
            if self._reading_stays(classified):
                continue
            text = message.get(CUSTOMER_TEXT_KEY) or message.get(TEXT) or ""
            number = self.number_in_a_yes(message.get(TEXT) or "", message.get(ENTITIES) or [], classified)
            if number is not None:
                # Offsets in the text classified: CustomerText moves them onto the customer's own words.
                entity = {"entity": ORDER_NUMBER_ENTITY, "value": number.group(), "start": number.start(),
                          "end": number.end(), "confidence": 1.0, "extractor": type(self).__name__}
                message.set(ENTITIES, (message.get(ENTITIES) or []) + [entity], add_to_output=True)
                message.set(STILL_LOOKING_KEY, {"number_in_a_yes": number.group(), "classifier_intent": classified},
                            add_to_output=True)
                continue
            put_off = self.put_off_in(text)
            if put_off is not None and not self._put_off_reading_stays(classified):
                set_intent(message, self.put_off["intent"])
                # The dismissal entity of components/acknowledgements.py: outside the form, "No problem!".
                entity = _whole_message_entity(DISMISSAL_ENTITY, "put_off", text, type(self).__name__)
                message.set(ENTITIES, (message.get(ENTITIES) or []) + [entity], add_to_output=True)
                message.set(STILL_LOOKING_KEY, {**put_off, "classifier_intent": classified}, add_to_output=True)
                continue
            found = self.match(text)
            if found is None:
                confidence = float(classified.get("confidence") or 0.0)
                if self.number_given_in(text, message.get(ENTITIES) or [], confidence):
                    set_intent(message, self.intent)
                    message.set(STILL_LOOKING_KEY, {"number_given": True, "classifier_intent": classified},
                                add_to_output=True)
                continue
            set_intent(message, self.intent)
            entity = _whole_message_entity(STILL_LOOKING_ENTITY, "still_looking", text, type(self).__name__)
            message.set(ENTITIES, (message.get(ENTITIES) or []) + [entity], add_to_output=True)
            message.set(STILL_LOOKING_KEY, {**found, "classifier_intent": classified}, add_to_output=True)
        return messages
