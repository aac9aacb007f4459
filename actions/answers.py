"""Knowledge-base answers (intent ask_question): verbatim, or an honest hand-off.

The knowledge base searches the part of the message that carries the question
(actions/conversation.question_text: without a leading "ok and" / "aur", or a declined request such
as "agent nahi chahiye,"). The best entry's answer is sent exactly as written in data/knowledge_base.yml when its calibrated
answer probability reaches `knowledge_base.answer_threshold` (escalation.yml); otherwise the bot says
it isn't sure and hands off (pattern 1). Right after a knowledge-base answer, a follow-up without a
topic of its own is answered from the entry just answered (`elliptical_follow_up_match` and
`follow_up_match`, escalation.yml `knowledge_base.follow_up_context`, `elliptical_follow_ups` and
`follow_up_keeps_topic`). A message that tells a story around one question is also searched by its
question sentence alone (`question_sentence_match`, `knowledge_base.question_sentences`). Every
lookup is recorded in the
`kb_match` slot for the inbox's knowledge-base page (keys: actions/CONTRACT.md).
"""
from __future__ import annotations

import functools
import logging
import os
import re
import threading
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import conversation, kb_reload
from actions.handoff import NLU_FALLBACK, decide_escalation, hand_off
from actions.knowledge_base import KnowledgeBase, Match, entries_declared_in
from actions.resolution import count_answer
from actions.settings import (
    DetailFollowUps, EllipticalFollowUps, EscalationSettings, FollowUpKeepsTopic, QuestionSentences, RefundFollowUps,
    settings,
)
from components import text_embedding
from components.phrases import PhraseList, tokenize, word_spans
from components.serving_threads import limit_blas_threads_for_serving

logger = logging.getLogger(__name__)

# A follow-up is searched with the previous question only when that answer's entry is among this
# many best entries for the message alone.
FOLLOW_UP_CANDIDATES = 3
# ...and when the message alone gives that entry at least this probability: an unrelated question has
# next to nothing for every entry (measured: "do you have a store in pune" 0.00 for all three).
FOLLOW_UP_MIN_PROBABILITY = 0.05
_SHARE_FLOOR = 1e-6  # an entry the classifier gives nothing still has this share in the odds

_started = False
_start_lock = threading.Lock()


def knowledge_base() -> KnowledgeBase:
    """The knowledge base this process serves: loaded and embedded once, then reloaded live when
    data/knowledge_base.yml or escalation.yml changes (actions/kb_reload.py). Callers take it once per
    action, so one answer never mixes two versions."""
    global _started
    if not _started:
        with _start_lock:
            if not _started:
                limit_blas_threads_for_serving()  # the action server answers one short question at a time
                kb_reload.ESCALATION.check()
                kb_reload.WATCHER.start()
                _started = True
    return kb_reload.KNOWLEDGE_BASE.value()


# Embed the knowledge base when the action server starts (rasa-sdk imports this module at start-up),
# not on the first customer question. KB_PRELOAD=0 skips it (e.g. tools that only need the classes).
if os.environ.get("KB_PRELOAD", "1") != "0":
    knowledge_base()


def kb_match(
    match: Optional[Match], answered: bool, threshold: float, context: Optional[str] = None
) -> Dict[str, Any]:
    """The `kb_match` slot: `score` is the answer probability the threshold was compared with,
    `similarity` the raw blended similarity it was computed from, `context` says when the previous
    question was searched together with this one (actions/CONTRACT.md)."""
    slot = {
        "entry_id": match.entry_id if match else None,
        "score": round(match.probability, 4) if match else 0.0,
        "answered": answered,
        "threshold": threshold,
        "similarity": round(match.similarity, 4) if match else 0.0,
    }
    if context:
        slot["context"] = context
    return slot


def follow_up_match(
    kb: KnowledgeBase, tracker: Tracker, candidates: List[Match], question: str, threshold: float,
    keeps_topic: Optional[FollowUpKeepsTopic] = None,
    declared: Sequence[Tuple[str, Sequence[str]]] = (),
    elliptical: Optional[EllipticalFollowUps] = None,
) -> Optional[Match]:
    """A follow-up whose subject is only in the bot's previous answer ("any extra fee for paying that
    way?", "kitne din tak?"): the previous question and this one searched together, and answered only
    with the entry the bot just answered from. `candidates` are this message's own matches, best
    first (all entries).

    - Alone below the threshold: only when this message alone already has that entry among its
      FOLLOW_UP_CANDIDATES best, so an unrelated new question is never pulled onto the previous topic.
    - Alone answered from ANOTHER entry (a neighbouring entry taking a follow-up without a topic of its
      own: "koi charge lagega?" after the exchanges answer looks like pricing): only when the message
      shows no strong topic of its own (`keeps_topic`, escalation.yml): it is short, its own entry's
      answer probability is not high, and the classifier does not find it many times likelier about
      its own entry than about the previous one, and it uses none of the words a designer declared for
      its own entry (`declared`: "saree press kaise kare" after the VIP answer is about care). None:
      never; a real switch ("aur COD hai?") switches.

    Either way, a message longer than the elliptical rule's `max_words` that the entry classifier places among
    the near misses (`is_near_miss` with `elliptical`'s limits) is judged alone: "birthday pe jo gift dete ho woh
    hota kya hai?" after the loyalty answer (0.84) asks what the answer does not say; read with the topic's
    question it came out answered (session 38, v35). Shorter ones had the elliptical rule's own check; a fragment
    it let through ("gift card pe bhi?" after the COD answer) tells too little to be a near miss.
    """
    previous = conversation.previous_kb_answer(tracker)
    if previous is None or not candidates:
        return None
    previous_question, entry_id = previous
    own = candidates[0]
    if (elliptical is not None and len(question.split()) > elliptical.max_words
            and is_near_miss(question, candidates, elliptical)):
        return None
    if own.probability >= threshold:
        if own.entry_id == entry_id or keeps_topic is None:
            return None
        earlier = next((c for c in candidates if c.entry_id == entry_id), None)
        if not has_no_topic_of_its_own(question, own, earlier, keeps_topic):
            return None
        if own.entry_id in entries_declared_in(question, declared):
            return None
    elif not any(
        c.entry_id == entry_id and c.probability >= FOLLOW_UP_MIN_PROBABILITY
        for c in candidates[:FOLLOW_UP_CANDIDATES]
    ):
        return None
    combined = kb.best_match(f"{previous_question} {question}")
    if combined and combined.entry_id == entry_id and combined.probability >= threshold:
        return combined
    return None


@functools.lru_cache(maxsize=16)
def _phrase_list(phrases: Tuple[str, ...]) -> PhraseList:
    """A designer's phrases from the settings, built once (the refund cues and switches, the lead-ins)."""
    return PhraseList(list(phrases))


def refund_follow_up_match(
    kb: KnowledgeBase, tracker: Tracker, candidates: List[Match], question: str, threshold: float,
    rule: Optional[RefundFollowUps],
) -> Optional[Match]:
    """A question about the money coming back, right after an answer that says how it comes back
    (`knowledge_base.refund_follow_ups`): "and for cod orders where does it go" after the returns answer, "and
    paisa kitne din mein wapas aata hai if i paid by upi?" after the cancellation answer. Alone such a question
    names a payment mode, another entry's topic (cash on delivery, payment methods), and the rules above judge it
    alone, which answered it from that entry: a wrong answer, as the answer just given says it. It stays on the
    entry just answered when it has one of `cues`, at most `max_words` words, none of the words that switch to
    the other subject (`entries`: "cancel" after returns), and the previous question and this one searched
    together pick that entry at the threshold. None: judged as before."""
    if rule is None or not candidates:
        return None
    previous = conversation.previous_kb_answer(tracker)
    if previous is None:
        return None
    previous_question, entry_id = previous
    switches = dict(rule.entries).get(entry_id)
    if switches is None or candidates[0].entry_id == entry_id:
        return None
    words = tokenize(question)
    if (len(words) > rule.max_words or _phrase_list(rule.cues).find(words) is None
            or (switches and _phrase_list(switches).find(words) is not None)):
        return None
    # Read with the question that set the topic: after "cancel kaise?" and "dispatch baad?" (kept on cancellation),
    # "refund kab?" read with "dispatch baad?" alone picked returns (session 33, hold-outs v26 and v27).
    topic = topic_question(tracker, entry_id) or previous_question
    combined = kb.best_match(f"{topic} {question}")
    if combined and combined.entry_id == entry_id and combined.probability >= threshold:
        return combined
    return None


def detail_follow_up_match(
    kb: KnowledgeBase, tracker: Tracker, candidates: List[Match], question: str, threshold: float,
    rule: Optional[DetailFollowUps], elliptical: Optional[EllipticalFollowUps] = None,
) -> Optional[Match]:
    """A contact detail asked about right after an answer that gives one (`knowledge_base.detail_follow_ups`): "sorry
    whats the email again?", "kis mail id pe bhejna hai?" or "mail kar diya, jawab kitne din me?" after the bulk-orders
    answer, which gives its own address. Alone, "email" is a word of the contact answer (support@…), which answered
    them: the wrong address. Kept on the entry just answered when the message has at most `max_words` words, asks for
    a detail (`asked`) that answer contains (`answer_has`), names no other entry's topic besides the detail's own
    words ("and the email for bulk orders?" after the contact answer names bulk orders) and no other purpose
    (`switches`: "whats your email for complaints"), and the question that set
    the topic and this one searched together reach the threshold with that entry. None: judged as before."""
    if rule is None or not candidates or len(question.split()) > rule.max_words:
        return None
    previous = conversation.previous_kb_answer(tracker)
    if previous is None:
        return None
    previous_question, entry_id = previous
    if candidates[0].entry_id == entry_id:
        return None
    words = tokenize(question)
    answer = kb.entry(entry_id).answer
    asked = [phrase for phrases, has in rule.details if has in answer and _phrase_list(phrases).find(words) is not None
             for phrase in phrases]
    if not asked or (rule.switches and _phrase_list(rule.switches).find(words) is not None):
        return None
    ignore = tuple(elliptical.not_topic_words if elliptical is not None else ()) + tuple(
        w for phrase in asked for w in phrase.split())
    declared = elliptical.topic_words if elliptical is not None else ()
    if kb.topics_named(question, besides=entry_id, ignore=ignore, declared=declared):
        return None
    return read_with_topic(kb, tracker, entry_id, previous_question, question, threshold)


def declared_topics(config: EscalationSettings) -> Sequence[Tuple[str, Sequence[str]]]:
    """The designer's topic words (`elliptical_follow_ups.topic_words`), or none when that rule is off."""
    elliptical = config.kb_elliptical_follow_ups
    return elliptical.topic_words if elliptical is not None else ()


def has_no_topic_of_its_own(
    question: str, own: Match, previous: Optional[Match], keeps_topic: FollowUpKeepsTopic
) -> bool:
    """Whether a message the knowledge base answers alone from entry `own` may still be a follow-up on
    the `previous` entry: short, `own` not very probable, and not much likelier than `previous`."""
    if len(question.split()) > keeps_topic.max_words or own.probability >= keeps_topic.max_probability:
        return False
    previous_share = previous.share if previous is not None else 0.0
    return own.share < keeps_topic.max_odds * max(previous_share, _SHARE_FLOOR)


class ActionAnswerQuestion(Action):
    def name(self) -> Text:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        config = settings()
        kb = knowledge_base()
        question = conversation.question_text(tracker)
        threshold = config.kb_answer_threshold
        # The NLU's embedding of the text it classified: the search skips encoding when that is `question`.
        carried = (tracker.latest_message or {}).get(text_embedding.KEY)
        match, context = decide(kb, config, tracker, question, carried=carried)
        if match is None or match.probability < threshold:
            logger.info("no KB answer (best %s)", match)
            events: List[EventType] = [SlotSet("kb_match", kb_match(match, False, threshold))]
            return events + await hand_off(dispatcher, tracker, reason="low_confidence")
        entry = kb.entry(match.entry_id)
        dispatcher.utter_message(text=entry.reply_text(cite_link=config.kb_cite_links))
        return [SlotSet("kb_match", kb_match(match, True, threshold, context))] + count_answer(tracker)


def decide(
    kb: KnowledgeBase, config: EscalationSettings, tracker: Any, question: str, carried: Any = None
) -> Tuple[Optional[Match], Optional[str]]:
    """The entry the bot answers `question` from, or its best entry when that is below the threshold
    (None: no entry at all), and the `kb_match` context of the answer. `tracker` needs only `events`
    (bench/kb_benchmark.py replays the same decision offline). `carried`: the parse data's `text_embedding`
    (KnowledgeBase.matches uses it only if it is the embedding of exactly `question`)."""
    threshold = config.kb_answer_threshold
    candidates = kb.matches(question, k=None, carried=carried)
    match = candidates[0] if candidates else None
    if config.kb_follow_up_context:
        contextual = elliptical_follow_up_match(
            kb, tracker, candidates, question, threshold, config.kb_elliptical_follow_ups
        ) or follow_up_match(kb, tracker, candidates, question, threshold, config.kb_follow_up_keeps_topic,
                             declared_topics(config), config.kb_elliptical_follow_ups
        ) or refund_follow_up_match(kb, tracker, candidates, question, threshold, config.kb_refund_follow_ups
        ) or detail_follow_up_match(kb, tracker, candidates, question, threshold, config.kb_detail_follow_ups,
                                    config.kb_elliptical_follow_ups)
        if contextual is not None:
            if match is not None and match.probability >= threshold:
                logger.info("follow-up kept on %s instead of %s", contextual.entry_id, match)
            return contextual, "previous_question"
    if match is not None and match.probability < threshold:
        sentence = question_sentence_match(kb, question, candidates, config.kb_question_sentences)
        if sentence is not None and sentence.probability >= threshold:
            return sentence, "question_sentence"
    return match, None


_SENTENCE_BREAK = re.compile(r"(?<=[.?!])\s+|\n+")
_EDGE_PUNCTUATION = " ,.;:!-–—"


def question_sentences(
    text: str, min_words: int, question_words: Sequence[str] = (), lead_ins: Sequence[str] = ()
) -> List[str]:
    """The parts of a message that may carry its question alone, each of at least `min_words` words:
    - of a message of two or more sentences, those that end with "?" or start with one of
      `question_words` ("can i swap it for a smaller one??" in "so my mom gifted me a linen shirt ...
      tags still on. can i swap it for a smaller one??"); a single sentence is the whole message;
    - the message without a lead-in that only introduces the question ("just tell me if the exchange
      pickup is free" -> "if the exchange pickup is free"), also when it is one sentence."""
    sentences = [s.strip() for s in _SENTENCE_BREAK.split(text) if s.strip()]
    parts: List[str] = []
    if len(sentences) >= 2:
        starts = set(question_words)
        parts = [s for s in sentences if s.endswith("?") or (tokenize(s) or [""])[0] in starts]
    without = _without_lead_in(text, lead_ins)
    if without is not None:
        parts.append(without)
    return [part for part in dict.fromkeys(parts) if len(part.split()) >= min_words]


def _without_lead_in(text: str, lead_ins: Sequence[str]) -> Optional[str]:
    """`text` with its lead-in taken out (the longest that occurs, whole words, any case or spacing), or None
    when it has none."""
    spans = word_spans(text)
    found = _phrase_list(tuple(lead_ins)).occurrences([word for word, _start, _end in spans])
    if not found:
        return None
    _phrase, first, last = max(found, key=lambda occurrence: len(occurrence[0]))
    before = text[:spans[first][1]].strip(_EDGE_PUNCTUATION)
    after = text[spans[last - 1][2]:].strip(_EDGE_PUNCTUATION)
    rest = f"{before}, {after}" if before and after else before or after
    return rest or None


def question_sentence_match(
    kb: KnowledgeBase, text: str, candidates: List[Match], rule: Optional[QuestionSentences]
) -> Optional[Match]:
    """A message that tells a story around its question ("bought a top last week", "my sister's
    trousseau, around 7k total") scores lower as a whole than its question does alone. Its question
    sentences are searched alone, and the best one is kept when it picks one of the whole message's
    FOLLOW_UP_CANDIDATES best entries (`candidates`, best first) with a higher probability than the
    whole message gives that entry: the story may blur the topic, but a sentence about an entry the
    whole message does not point to is ignored. None: no such sentence, or `rule` is None (off)."""
    if rule is None:
        return None
    whole = {c.entry_id: c.probability for c in candidates[:FOLLOW_UP_CANDIDATES]}
    best: Optional[Match] = None
    for sentence in question_sentences(text, rule.min_words, rule.question_words, rule.lead_ins):
        found = kb.best_match(sentence)
        if found is None or found.probability <= whole.get(found.entry_id, 1.0):
            continue
        if best is None or found.probability > best.probability:
            best = found
    return best


def topic_question(tracker: Tracker, entry_id: str) -> Optional[str]:
    """The customer question that set the topic of the answers from `entry_id` the bot just gave: the first
    of the unbroken run of answers from that entry, walking back over follow-ups kept on it and over
    follow-ups it answered alone. "exchange kaise hota hai?" for "koi charge lagega?" after "kitne din ke
    andar karna hota hai" was kept on exchanges. Session 34: also over a short follow-up the entry answered
    alone ("and once dispatched?" after "how do i cancel an order?", at the 0.50 threshold): read with it,
    "when's the refund?" picked the returns entry. None when the previous reply was not an answer from
    `entry_id`."""
    question: Optional[str] = None
    for event, lookup in conversation.earlier_turns(tracker):
        if not lookup or not lookup.get("answered") or lookup.get("entry_id") != entry_id:
            return question
        question = conversation.searched_question(event)
    return question


def elliptical_follow_up_match(
    kb: KnowledgeBase, tracker: Tracker, candidates: List[Match], question: str, threshold: float,
    elliptical: Optional[EllipticalFollowUps], answered_alone: bool = False,
) -> Optional[Match]:
    """A short message right after a knowledge-base answer that names no other entry's topic
    ("kitne din ke andar karna hota hai", "koi charge lagega?", "how many days do i have for that") is
    about the entry just answered, whatever entry it would get alone: it is answered from that entry
    when the entry reaches the threshold for the question that set the topic and this one searched
    together. `candidates` are this message's own matches (all entries). Conditions
    (`knowledge_base.elliptical_follow_ups`): at most `max_words` words; no topic word of another entry
    (KnowledgeBase.topics_named: "aur COD milega?" names cash_on_delivery and is judged alone); the
    classifier gives the previous entry at least `min_share` for the message alone (an unrelated
    question gives it next to nothing), and less than `max_near_miss_share` to its near misses (a question
    the entry's `not_covered` describes, "ye points kitne time mein lapse ho jaate?" after the loyalty answer, is
    judged alone: read with the topic's question it came out answered; only from `near_miss_min_words` words).
    `candidates` must be every entry (KnowledgeBase.matches with k=None): the near misses' share is what they leave.
    None: judged as before. `answered_alone`: a message that meets the conditions and that the entry just answered
    already answers alone gets that match (candidates[0] itself) instead of None (`fallback_follow_up`: nothing else
    would answer it)."""
    if elliptical is None or len(question.split()) > elliptical.max_words:
        return None
    previous = conversation.previous_kb_answer(tracker)
    if previous is None:
        return None
    previous_question, entry_id = previous
    alone = next((c for c in candidates if c.entry_id == entry_id), None)
    if (alone is None or alone.share < elliptical.min_share
            or is_near_miss(question, candidates, elliptical)
            or kb.topics_named(question, besides=entry_id, ignore=elliptical.not_topic_words,
                               declared=elliptical.topic_words)):
        return None
    if alone is candidates[0] and alone.probability >= threshold:
        # Answered from the same entry alone: reading it with the topic could only give the same answer,
        # so it is not searched again (a second search is a third of the action's CPU). Answered alone,
        # it sets the topic for the next follow-up itself (topic_question).
        return alone if answered_alone else None
    return read_with_topic(kb, tracker, entry_id, previous_question, question, threshold)


def read_with_topic(
    kb: KnowledgeBase, tracker: Tracker, entry_id: str, previous_question: str, question: str, threshold: float,
) -> Optional[Match]:
    """Entry `entry_id`'s match for the question that set its topic (or the previous question) and `question` searched
    together, when it reaches the threshold; None otherwise. The last step of the elliptical and detail follow-ups."""
    topic = topic_question(tracker, entry_id) or previous_question
    combined = next((m for m in kb.matches(f"{topic} {question}", k=None) if m.entry_id == entry_id), None)
    if combined is not None and combined.probability >= threshold:
        return combined
    return None


def near_miss_share(candidates: Sequence[Match]) -> float:
    """What the entry classifier gives its near-miss class (no entry answers it): what every entry's share
    (`candidates`: all entries) leaves of 1."""
    return max(0.0, 1.0 - sum(candidate.share for candidate in candidates))


def is_near_miss(question: str, candidates: Sequence[Match], elliptical: EllipticalFollowUps) -> bool:
    """Whether the entry classifier places `question` among the near misses (`max_near_miss_share` or more), for a
    message of at least `near_miss_min_words` words: "inside out?" after the care answer tells too little to be one
    (session 36: at 0.81 it was handed off)."""
    if elliptical.max_near_miss_share is None or len(question.split()) < elliptical.near_miss_min_words:
        return False
    return near_miss_share(candidates) >= elliptical.max_near_miss_share


def fallback_follow_up(
    kb: KnowledgeBase, config: EscalationSettings, tracker: Any, question: str, candidates: Sequence[Match]
) -> Optional[Tuple[Match, Optional[str]]]:
    """A short fragment right after a knowledge-base answer that the NLU fell back on ("and the weekend
    hours", "aur maximum kitna"): (match, kb_match context) when the elliptical follow-up rule answers it
    from the entry just answered, else None.

    `question` is what `fallback_rescue_question` allowed (nlu_fallback for low confidence alone, the rescue
    intent first, no request or topic ranked high, no form, no turn limit) and `candidates` its search (every
    entry, best first); the caller checked `is_follow_up_fragment`. The message must also meet every condition of
    `elliptical_follow_up_match` (no other entry's topic word, the previous entry's share) and reach the answer
    threshold with the entry just answered: read with the question that set the topic ("previous_question"),
    or alone (no context)."""
    # Returns only a match that reaches the threshold (alone or read with the topic), else None.
    match = elliptical_follow_up_match(kb, tracker, candidates, question, config.kb_answer_threshold,
                                       config.kb_elliptical_follow_ups, answered_alone=True)
    if match is None:
        return None
    return match, (None if match is candidates[0] else "previous_question")


def confident_fallback(tracker: Any, candidates: Sequence[Match], min_probability: float) -> Optional[Match]:
    """The message's own best entry (`candidates[0]`) when its answer probability reaches `min_probability`
    (`elliptical_follow_ups.rescue_min_probability`), else None. For a fallback `fallback_rescue_question`
    allows that is no follow-up the elliptical rule answers: "explain the loyalty club to me" with no answer
    before it, ranked ask_question under the NLU threshold, while the knowledge base is sure of its entry."""
    if (tracker.latest_message or {}).get(conversation.FOLLOW_UP_KEY):
        return None  # "aur timing?" leans on what came before: judged alone it could pick any entry's timings
    return candidates[0] if candidates and candidates[0].probability >= min_probability else None


def is_follow_up_fragment(config: EscalationSettings, tracker: Any, question: str) -> bool:
    """At most `max_words` words, right after a knowledge-base answer: what the follow-up rescue may read with
    the previous question."""
    return (len(question.split()) <= config.kb_elliptical_follow_ups.max_words
            and conversation.previous_kb_answer(tracker) is not None)


def fallback_rescue_question(config: EscalationSettings, tracker: Any) -> Optional[str]:
    """The text a fallback rescue searches when the tracker allows one at all, else None; reads only
    the tracker (no knowledge base), so a hand-off that cannot be rescued costs no search."""
    elliptical = config.kb_elliptical_follow_ups
    if not config.kb_follow_up_context or elliptical is None or not elliptical.rescue_fallbacks:
        return None
    if conversation.latest_intent(tracker) != NLU_FALLBACK or (tracker.active_loop or {}).get("name"):
        return None
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    first = next((entry.get("name") for entry in ranking if entry.get("name") != NLU_FALLBACK), None)
    if first not in elliptical.rescue_intents:
        return None
    hand_off_intents = {config.human_request_intent, *config.topics}
    if any(entry.get("name") in hand_off_intents
           and float(entry.get("confidence") or 0.0) >= elliptical.rescue_max_hand_off_confidence for entry in ranking):
        return None  # a request for a person or a pattern-3 topic is a real reading of it: a person decides
    if decide_escalation(tracker, config).reason != "low_confidence":
        return None
    return conversation.question_text(tracker)


async def answer_fallback_follow_up(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> Optional[List[EventType]]:
    """action_handoff's first step for nlu_fallback (data/rules/escalation.yml): the answer and its events
    when `fallback_follow_up` rescues the message, counted for pattern 4 like any answer; None: hand off."""
    config = settings()
    question = fallback_rescue_question(config, tracker)
    if question is None:
        return None
    fragment = is_follow_up_fragment(config, tracker, question)
    floor = config.kb_elliptical_follow_ups.rescue_min_probability
    if not fragment and floor is None:
        return None  # neither rescue can answer it: no search
    kb = knowledge_base()
    candidates = kb.matches(question, k=None, carried=(tracker.latest_message or {}).get(text_embedding.KEY))
    found, rescue = (fallback_follow_up(kb, config, tracker, question, candidates) if fragment else None), "follow_up"
    if found is None and floor is not None:
        confident = confident_fallback(tracker, candidates, floor)
        if confident is not None:
            found, rescue = (confident, None), "confident"
    if found is None:
        return None
    match, context = found
    logger.info("nlu_fallback answered (%s) on %s", rescue, match)
    dispatcher.utter_message(text=kb.entry(match.entry_id).reply_text(cite_link=config.kb_cite_links))
    slot = {**kb_match(match, True, config.kb_answer_threshold, context), "nlu_fallback": True, "rescue": rescue}
    return [SlotSet("kb_match", slot)] + count_answer(tracker)
