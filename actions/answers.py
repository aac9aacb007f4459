"""Knowledge-base answers (intent ask_question): verbatim, or an honest hand-off.

The knowledge base searches the part of the message that carries the question
(actions/conversation.question_text: without a leading "ok and" / "aur", or a declined request such
as "agent nahi chahiye,"). The best entry's answer is sent exactly as written in data/knowledge_base.yml when its calibrated
answer probability reaches `knowledge_base.answer_threshold` (escalation.yml); otherwise the bot says
it isn't sure and hands off (pattern 1). Every lookup is recorded in the `kb_match` slot for the
inbox's knowledge-base page (keys: actions/CONTRACT.md).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import conversation
from actions.handoff import hand_off
from actions.knowledge_base import KnowledgeBase, Match
from actions.resolution import count_answer
from actions.settings import settings
from components.serving_threads import limit_blas_threads_for_serving

logger = logging.getLogger(__name__)

_kb: Optional[KnowledgeBase] = None
_kb_lock = threading.Lock()


def knowledge_base() -> KnowledgeBase:
    """Loaded and embedded once per action-server process."""
    global _kb
    with _kb_lock:
        if _kb is None:
            limit_blas_threads_for_serving()  # the action server answers one short question at a time
            config = settings()
            _kb = KnowledgeBase.from_yaml(config.kb_path, model=config.kb_model)
            logger.info("knowledge base loaded: %d entries from %s", len(_kb.entries), config.kb_path)
        return _kb


# Embed the knowledge base when the action server starts (rasa-sdk imports this module at start-up),
# not on the first customer question. KB_PRELOAD=0 skips it (e.g. tools that only need the classes).
if os.environ.get("KB_PRELOAD", "1") != "0":
    knowledge_base()


def kb_match(match: Optional[Match], answered: bool, threshold: float) -> Dict[str, Any]:
    """The `kb_match` slot: `score` is the answer probability the threshold was compared with,
    `similarity` the raw blended similarity it was computed from."""
    return {
        "entry_id": match.entry_id if match else None,
        "score": round(match.probability, 4) if match else 0.0,
        "answered": answered,
        "threshold": threshold,
        "similarity": round(match.similarity, 4) if match else 0.0,
    }


class ActionAnswerQuestion(Action):
    def name(self) -> Text:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        config = settings()
        kb = knowledge_base()
        match = kb.best_match(conversation.question_text(tracker))
        threshold = config.kb_answer_threshold
        if match is None or match.probability < threshold:
            logger.info("no KB answer for %s (best %s)", tracker.sender_id, match)
            events: List[EventType] = [SlotSet("kb_match", kb_match(match, False, threshold))]
            return events + await hand_off(dispatcher, tracker, reason="low_confidence")
        entry = kb.entry(match.entry_id)
        dispatcher.utter_message(text=entry.reply_text(cite_link=config.kb_cite_links))
        return [SlotSet("kb_match", kb_match(match, True, threshold))] + count_answer(tracker)
