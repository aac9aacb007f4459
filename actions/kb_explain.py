"""What the bot would do with one message: the knowledge-base entries it would consider and whether it
would hand off, and why. Served by the action server at POST /kb/explain (actions/CONTRACT.md) for the
inbox's "Test answer" box, so the answer comes from the knowledge base and settings this process
serves, and the hand-off decision from the code the actions run (handoff.decide_escalation).

The caller sends Rasa's parse of the message (POST /model/parse, the live NLU model). The message is
judged alone, as a first message: no previous question for follow-up context (pattern 1's
`follow_up_context`) and no count of earlier answers (pattern 4).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from actions import conversation
from actions.answers import FOLLOW_UP_CANDIDATES, knowledge_base
from actions.handoff import NLU_FALLBACK, decide_escalation
from actions.knowledge_base import KnowledgeBase
from actions.settings import EscalationSettings, settings

QUESTION_INTENT = "ask_question"  # answered by action_answer_question (data/rules/questions.yml)
MAX_TEXT_CHARS = 2000


class ExplainError(ValueError):
    """The request does not say what to explain; the message says what is missing."""


def _tracker(text: str, parse: Dict[str, Any]) -> Tracker:
    latest = {**parse, "text": text}
    event = {"event": "user", "timestamp": time.time(), "text": text, "parse_data": latest,
             "input_channel": "rest", "metadata": {}}
    return Tracker(
        sender_id="kb-explain", slots={"bot_answer_count": 0.0, "turn_limit_reached": False},
        latest_message=latest, events=[event], paused=False, followup_action=None, active_loop={},
        latest_action_name="action_listen",
    )


def explain(
    request: Any, kb: Optional[KnowledgeBase] = None, config: Optional[EscalationSettings] = None
) -> Dict[str, Any]:
    """The explanation of `{"text": ..., "parse": <Rasa's parse of text>}` (see actions/CONTRACT.md)."""
    if not isinstance(request, dict):
        raise ExplainError("send a JSON object with `text` and `parse`")
    text, parse = request.get("text"), request.get("parse")
    if not isinstance(text, str) or not text.strip():
        raise ExplainError("`text` must be the customer's message (a non-empty string)")
    if len(text) > MAX_TEXT_CHARS:
        raise ExplainError(f"`text` is longer than {MAX_TEXT_CHARS} characters")
    if not isinstance(parse, dict) or not isinstance(parse.get("intent"), dict):
        raise ExplainError("`parse` must be Rasa's parse of the text (POST /model/parse), with `intent`")
    config = config or settings()
    kb = kb or knowledge_base()
    tracker = _tracker(text, parse)
    question = conversation.question_text(tracker)
    # The same call and the same number of candidates as action_answer_question.
    candidates = kb.matches(question, k=FOLLOW_UP_CANDIDATES)
    threshold = config.kb_answer_threshold
    best = candidates[0] if candidates else None
    kb_confident = best is not None and best.probability >= threshold
    intent = conversation.latest_intent(tracker)
    route = config.topics.get(intent or "")
    escalation = None
    if intent == QUESTION_INTENT:
        outcome = "answer" if kb_confident else "handoff"
        if not kb_confident:
            escalation = decide_escalation(tracker, config, reason="low_confidence")
    elif intent == NLU_FALLBACK or intent == config.human_request_intent or route is not None:
        outcome = "handoff"
        escalation = decide_escalation(tracker, config)
    else:
        outcome = "dialogue"  # the bot's own reply for that intent (domain responses, forms)
    return {
        "text": text,
        "question": question,
        "intent": {"name": intent, "confidence": (parse.get("intent") or {}).get("confidence")},
        "intent_ranking": [
            {"name": item.get("name"), "confidence": item.get("confidence")}
            for item in (parse.get("intent_ranking") or [])[:5]
        ],
        "threshold": threshold,
        "matches": [_match(kb, match, threshold) for match in candidates],
        "outcome": outcome,
        "handoff": _handoff(escalation, intent, kb_confident) if escalation else None,
        "knowledge_base_version": _version(),
    }


def _match(kb: KnowledgeBase, match: Any, threshold: float) -> Dict[str, Any]:
    return {
        "entry_id": match.entry_id,
        "title": kb.entry(match.entry_id).title,
        "score": round(match.probability, 4),
        "similarity": round(match.similarity, 4),
        "above_threshold": match.probability >= threshold,
    }


def _handoff(escalation: Any, intent: Optional[str], kb_confident: bool) -> Dict[str, Any]:
    if escalation.reason == "low_confidence":
        because = "kb_not_confident" if intent == QUESTION_INTENT and not kb_confident else "nlu_low_confidence"
    else:
        because = escalation.reason
    return {"reason": escalation.reason, "because": because, "topic": escalation.topic,
            "tags": list(escalation.tags), "priority": escalation.priority}


def _version() -> Optional[str]:
    from actions import kb_reload

    return kb_reload.KNOWLEDGE_BASE.status().get("version")


def routes() -> List[Any]:
    """(method, path, handler) of the action server's /kb endpoints (registered by actions/server.py)."""
    from sanic import response

    from actions import kb_reload

    async def explain_route(request):
        try:
            body = request.json
        except Exception:  # noqa: BLE001 - Sanic raises its own error types for malformed JSON
            body = None
        try:
            # Embedding a question takes milliseconds of CPU; off the event loop anyway.
            result = await asyncio.get_running_loop().run_in_executor(None, explain, body)
        except ExplainError as error:
            return response.json({"error": str(error)}, status=400)
        return response.json(result)

    async def status_route(request):
        return response.json(kb_reload.status())

    return [("POST", "/kb/explain", explain_route), ("GET", "/kb/status", status_route)]
