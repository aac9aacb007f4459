"""Order status: collect the order number (order_status_form), then answer honestly.

The bot has no access to the order system, so it never makes up a status: it confirms the order number
it noted and sends the knowledge base's order-tracking answer verbatim. The number is kept in the
`order_number` slot, so an agent sees it if the customer is handed off later.

The form does not nag. When the customer writes about something else while it waits for the number
(a question, "ok", a greeting…), that message is answered by its own rule, and the form then asks again
at most `order_status_form.re_ask_limit` times (messages.yml). After that it lets go: it stops without
a word, sets `order_form_let_go` (the rule in data/rules/orders.yml then just listens) and is no longer
active. A later "#2840" or "where is order 2840" starts the form again and is answered at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, FrozenSet, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import conversation
from actions.answers import knowledge_base
from actions.handoff import NLU_FALLBACK, hand_off
from actions.resolution import count_answer
from actions.settings import SettingsError, action_messages, settings

ORDER_TRACKING_ENTRY = "order_tracking"
FORM = "order_status_form"
ORDER_STATUS_INTENT = "order_status"
# Slots of the form's own bookkeeping (domain.yml).
LET_GO_SLOT = "order_form_let_go"  # featurized: tells the rules "stopped without a number"
RE_ASKS_SLOT = "order_form_re_asks"  # how often the form asked again after a side message
# Entity of "one sec, finding it" (components/still_looking.py): the customer is looking for the number.
STILL_LOOKING_ENTITY = "still_looking"
# Actions that run in every turn without answering anything themselves.
_TURN_MACHINERY = {"action_listen", FORM}
# A run of 3-10 digits that is not part of a longer number or an amount ("4,500", "18.50").
_BARE_NUMBER = re.compile(r"(?<!\d)(?<!\d[.,])\d{3,10}(?!\d)(?![.,]\d)")
_WORD = re.compile(r"[a-z]+")
_CLAUSE_BREAK = re.compile(r"[,;!?]|\.\s")


@dataclass(frozen=True)
class OrderFormSettings:
    ask: str
    ask_again: str
    # Said while the customer is still looking for the number (escalation.yml `still_looking`).
    still_looking: str
    re_ask_limit: int
    # Intents whose messages are never read as the order number (answered or handed off as themselves).
    not_an_answer_intents: FrozenSet[str]
    # Words that make a bare number next to them something else (a pin code, an amount): lower-case word tuples.
    not_next_to: FrozenSet[tuple] = frozenset()
    # A number given in a message the NLU could not place, with at least this many other words, is noted and then
    # handed off as low_confidence (the rest is a question the bot cannot place); 0: off.
    question_beside_the_number_min_words: int = 0

    def question_beside_the_number(self, text: str, intent: Optional[str]) -> bool:
        """The message the number came in also says something the NLU could not place (it fell back)."""
        if not self.question_beside_the_number_min_words or intent != NLU_FALLBACK:
            return False
        return len(_WORD.findall(_BARE_NUMBER.sub(" ", text.lower()))) >= self.question_beside_the_number_min_words

    def number_in(self, text: str) -> Optional[str]:
        """The first bare run of 3-10 digits in the customer's `text` that is not next to one of `not_next_to`
        ("hyderabad 500032 pin, …", "pincode 411014"), as "#2840"; None when there is none."""
        for match in _BARE_NUMBER.finditer(text):
            # The words on each side up to a comma or the end of a sentence: "2840, pin is 411014" names both.
            before = _WORD.findall(_CLAUSE_BREAK.split(text[: match.start()].lower())[-1])
            after = _WORD.findall(_CLAUSE_BREAK.split(text[match.end():].lower())[0])
            if text[: match.start()].rstrip().endswith("₹") or any(
                tuple(before[-len(words):]) == words or tuple(after[: len(words)]) == words
                for words in self.not_next_to
            ):
                continue
            return f"#{match.group()}"
        return None


def parse_order_form_settings(section: Any, handoff_intents: FrozenSet[str], where: str) -> OrderFormSettings:
    if not isinstance(section, dict):
        raise SettingsError(f"{where}: `order_status_form` must be a mapping")
    texts = {}
    for key in ("ask_order_number", "ask_again", "still_looking"):
        text = section.get(key)
        if not isinstance(text, str) or not text.strip():
            raise SettingsError(f"{where}: order_status_form.{key} must be a non-empty text")
        texts[key] = text.strip()
    limit = section.get("re_ask_limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise SettingsError(f"{where}: order_status_form.re_ask_limit must be a whole number >= 0, got {limit!r}")
    intents = section.get("not_an_answer_intents")
    if not isinstance(intents, list) or not all(isinstance(i, str) and i for i in intents):
        raise SettingsError(f"{where}: order_status_form.not_an_answer_intents must be a list of intent names")
    if ORDER_STATUS_INTENT in intents:
        raise SettingsError(f"{where}: order_status_form.not_an_answer_intents must not contain {ORDER_STATUS_INTENT}")
    next_to = section.get("not_order_numbers_next_to", [])
    if not isinstance(next_to, list) or not all(
            isinstance(w, str) and w.split() and all(_WORD.fullmatch(part) for part in w.lower().split())
            for w in next_to):
        raise SettingsError(f"{where}: order_status_form.not_order_numbers_next_to must be a list of words or phrases "
                            f"of letters, got {next_to!r}")
    beside = section.get("question_beside_the_number_min_words", 0)
    if not isinstance(beside, int) or isinstance(beside, bool) or beside < 0:
        raise SettingsError(f"{where}: order_status_form.question_beside_the_number_min_words must be a whole number "
                            f">= 0 (0: off), got {beside!r}")
    return OrderFormSettings(
        ask=texts["ask_order_number"],
        ask_again=texts["ask_again"],
        still_looking=texts["still_looking"],
        re_ask_limit=limit,
        not_an_answer_intents=frozenset(intents) | handoff_intents,
        not_next_to=frozenset(tuple(w.lower().split()) for w in next_to),
        question_beside_the_number_min_words=beside,
    )


@lru_cache(maxsize=1)
def order_form_settings() -> OrderFormSettings:
    """messages.yml `order_status_form`, checked once per process. Messages that hand off (a person,
    or a topic in escalation.yml) never give the order number either."""
    config = settings()
    handoff_intents = frozenset(config.topics) | {config.human_request_intent}
    return parse_order_form_settings(action_messages().get("order_status_form"), handoff_intents, "messages.yml")


def _events_since_latest_user_message(tracker: Tracker) -> List[Dict[Text, Any]]:
    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        if events[index].get("event") == "user":
            return events[index + 1:]
    return events


def side_message_answered_this_turn(tracker: Tracker) -> bool:
    """True when the form runs again after another action answered the customer's latest message
    (a KB answer, a greeting, "Great!"…): the message was about something else, not the number."""
    return any(
        event.get("event") == "action" and event.get("name") not in _TURN_MACHINERY
        for event in _events_since_latest_user_message(tracker)
    )


def still_looking(tracker: Tracker) -> bool:
    """The customer's latest message says they are still looking for the number."""
    return any(entity.get("entity") == STILL_LOOKING_ENTITY for entity in (tracker.latest_message or {}).get("entities") or [])


def form_is_starting(tracker: Tracker) -> bool:
    """The customer's latest message started the form. Rasa validates on activation both with the
    form already marked active (after this message) and not yet marked active."""
    if (tracker.active_loop or {}).get("name") != FORM:
        return True
    return any(
        event.get("event") == "active_loop" and event.get("name") == FORM
        for event in _events_since_latest_user_message(tracker)
    )


def fresh_start_events(tracker: Tracker) -> List[EventType]:
    """Forget how the previous order form ended: a new one may ask again and may complete."""
    events: List[EventType] = []
    if tracker.get_slot(LET_GO_SLOT):
        events.append(SlotSet(LET_GO_SLOT, False))
    if tracker.get_slot(RE_ASKS_SLOT):
        events.append(SlotSet(RE_ASKS_SLOT, 0.0))
    return events


class ValidateOrderStatusForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_order_status_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        if side_message_answered_this_turn(tracker):
            # Back after answering a side message: that message was read already, nothing new to take.
            return []
        if form_is_starting(tracker):
            events = fresh_start_events(tracker)
            if conversation.latest_order_number(tracker) or self._number_in_order_question(tracker):
                return events + await super().run(dispatcher, tracker, domain)
            if tracker.get_slot("order_number"):
                # A new order question without a number ("and my other order?"): ask, don't reuse the
                # number of an earlier order (the agent still sees every number in the hand-off).
                events.append(SlotSet("order_number", None))
            return events
        if conversation.latest_intent(tracker) in order_form_settings().not_an_answer_intents:
            # A question or a hand-off: reject the form for this message so its own rule answers it or
            # hands off. An order number it carries ("can I return #2840?") stays noted for the agent,
            # and completes the form when it comes back to it; a pin code or price does not count.
            return self._reject(conversation.latest_order_number(tracker))
        if tracker.get_slot("turn_limit_reached"):
            # Pattern 4: the customer's next message hands off, whatever it is (a resolution signal is
            # honoured by its rule, and the form comes back). A number in it is kept for the agent.
            return self._reject(order_form_settings().number_in(conversation.latest_user_text(tracker) or ""))
        if still_looking(tracker):
            # "One sec, finding it": the message was for the form, with nothing to take yet. A validated slot
            # keeps Rasa from rejecting the form (which would hand the message to the rules, and a low-confidence
            # hand-off); action_ask_order_number then says `still_looking` instead of asking again.
            return [SlotSet("order_number", None)]
        return await super().run(dispatcher, tracker, domain)

    @staticmethod
    def _reject(number: Optional[str]) -> List[EventType]:
        kept = [SlotSet("order_number", number)] if number else []
        return kept + [ActionExecutionRejected(FORM)]

    @staticmethod
    def _number_in_order_question(tracker: Tracker) -> Optional[str]:
        if conversation.latest_intent(tracker) != ORDER_STATUS_INTENT:
            return None
        return order_form_settings().number_in(conversation.latest_user_text(tracker) or "")

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        # A bare "2840" is an order number too while the form asks for it, and in an order question
        # ("2840 ka kya hua"); elsewhere the entity rules need "#" or the word "order" to be safe.
        if tracker.get_slot("requested_slot") == "order_number":
            number = order_form_settings().number_in(conversation.latest_user_text(tracker) or "")
        else:
            number = self._number_in_order_question(tracker)
        return {"order_number": number} if number else {}

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        # Not a number: leave the slot empty and the form asks again (the question says what we need).
        return {"order_number": conversation.normalize_order_number(slot_value)}


def ask_events(tracker: Tracker, config: OrderFormSettings) -> tuple[Optional[str], List[EventType]]:
    """What the form says when it needs the number, and the events: (text or None, events).

    The first question, and the reply to something that was not a usable number, ask in full. After a
    side message was answered the form asks again, up to `re_ask_limit` times; then it lets go
    silently (the side answer was the reply) and ends itself. After a side message that got no reply
    (a 👍 reaction) it says nothing and keeps waiting.
    """
    if not side_message_answered_this_turn(tracker):
        if still_looking(tracker) and not form_is_starting(tracker):
            # "One sec, checking my email": wait for it; this is not asking again, so nothing is counted.
            return config.still_looking, []
        return config.ask, []
    if not any(event.get("event") == "bot" for event in _events_since_latest_user_message(tracker)):
        # A silent resolution signal (a 👍 reaction to the question): no reply, keep waiting.
        return None, []
    re_asks = int(tracker.get_slot(RE_ASKS_SLOT) or 0) + 1
    if re_asks > config.re_ask_limit:
        return None, [SlotSet(LET_GO_SLOT, True), SlotSet("requested_slot", None)]
    return config.ask_again, [SlotSet(RE_ASKS_SLOT, float(re_asks))]


class ActionAskOrderNumber(Action):
    """The form's question (messages.yml), asked again at most `re_ask_limit` times."""

    def name(self) -> Text:
        return "action_ask_order_number"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        text, events = ask_events(tracker, order_form_settings())
        if text:
            dispatcher.utter_message(text=text)
        return events


class ActionAnswerOrderStatus(Action):
    def name(self) -> Text:
        return "action_answer_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        # utter_order_number_noted ("Thanks, I've noted order #2840…") comes first when the number is
        # known; asked again inside the form without a number, this is the answer on its own.
        entry = knowledge_base().entry(ORDER_TRACKING_ENTRY)
        dispatcher.utter_message(text=entry.reply_text(cite_link=settings().kb_cite_links))
        events = count_answer(tracker)
        if order_form_settings().question_beside_the_number(
                conversation.latest_user_text(tracker) or "", conversation.latest_intent(tracker)):
            # "52931 - and can the bill carry my firm's GSTIN?": the number is noted, the rest the bot could not
            # place. Honest hand-off (pattern 1), the number already in the slot for the agent.
            return events + await hand_off(dispatcher, tracker, reason="low_confidence")
        return events
