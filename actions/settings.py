"""escalation.yml, read once per process and checked, so a typo fails at start-up with a clear message."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from actions.handoff_contract import priorities, reasons_made_here
from components.phrases import PhraseList
from components.onnx_encoder import PRECISIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_ENV = "ESCALATION_SETTINGS"

REASONS = reasons_made_here()  # contracts/handoff.yml
PRIORITIES = priorities()


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class TopicRoute:
    intent: str
    topic: str
    tags: List[str]
    priority: str


@dataclass(frozen=True)
class FollowUpKeepsTopic:
    """`knowledge_base.follow_up_keeps_topic`: when a short follow-up that the knowledge base would answer
    alone from ANOTHER entry stays on the entry the bot just answered from (actions/answers.py)."""

    max_words: int = 6  # only messages of at most this many words (after "ok and" / "aur") can keep it
    max_probability: float = 0.85  # ...whose own entry's answer probability is below this
    max_odds: float = 20.0  # ...and which the classifier finds less than this many times likelier about their own entry


@dataclass(frozen=True)
class RefundFollowUps:
    """`knowledge_base.refund_follow_ups`: a question about the money coming back, asked right after an answer
    that says how it comes back, stays on that answer whatever payment mode it names (actions/answers.py)."""

    # (entry id, phrases that name another entry's own subject instead): the answers that say how the money comes
    # back, and for each the words with which a customer has switched to the other ("cancel" after returns).
    entries: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    cues: Tuple[str, ...] = ()  # phrases that ask about the money coming back ("refund", "wapas", "where does it go")
    max_words: int = 14


@dataclass(frozen=True)
class DetailFollowUps:
    """`knowledge_base.detail_follow_ups`: a contact detail asked about right after an answer that gives one ("sorry
    whats the email again?" after the bulk-orders answer) stays on that answer, though the detail's word alone points
    at another entry (the contact answer's e-mail) (actions/answers.py)."""

    # (phrases that ask for the detail, text the answer must contain to give it): ("email", "mail id"), "@"
    details: Tuple[Tuple[Tuple[str, ...], str], ...] = ()
    # phrases that ask for another purpose's detail ("whats your email for complaints" after the bulk answer)
    switches: Tuple[str, ...] = ()
    max_words: int = 12


@dataclass(frozen=True)
class EllipticalFollowUps:
    """`knowledge_base.elliptical_follow_ups`: a short message right after a knowledge-base answer that
    names no other entry's topic stays on the entry just answered (actions/answers.py)."""

    max_words: int = 6  # only messages of at most this many words (after "ok and" / "aur")
    min_share: float = 0.01  # ...to which the entry classifier gives the previous entry at least this share
    # ...and which the entry classifier does not place among the known near misses (its NONE class: the entries'
    # `not_covered` and the near-miss file) with this share or more. None: no such limit.
    max_near_miss_share: Optional[float] = None
    near_miss_min_words: int = 3  # ...for messages of at least this many words (a fragment tells too little)
    # Words that never name an entry's topic, whatever the entries' examples make of them ("too", "which",
    # "koi"): lower case, one word each.
    not_topic_words: Tuple[str, ...] = ()
    # Words that name an entry's topic although its examples use them too rarely for it to be learnt
    # ("press", "dhoye" for care_washing): (entry id, lower-case single words) pairs.
    topic_words: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    # A message the NLU fell back on (nlu_fallback, no turn limit, no topic) is answered by this rule too when
    # the intent ranked first after the fallback is one of `rescue_intents` (actions/answers.py
    # `fallback_follow_up`); otherwise, and when this is False, it is handed off as low_confidence.
    rescue_fallbacks: bool = False
    rescue_intents: Tuple[str, ...] = ("ask_question",)
    # ...and no request for a person or pattern-3 topic is ranked at this confidence or above (0-1].
    rescue_max_hand_off_confidence: float = 0.3
    # With the same conditions, a fallback that is no follow-up (no answer before it, a longer message, another
    # entry's topic) is answered from its own best entry when that entry's answer probability reaches this
    # (actions/answers.py `confident_fallback`). None: such a fallback is handed off.
    rescue_min_probability: Optional[float] = None


@dataclass(frozen=True)
class QuestionSentences:
    """`knowledge_base.question_sentences`: a message that tells a story and asks one question is also
    searched by its question sentences alone (actions/answers.py)."""

    min_words: int = 3  # a question sentence shorter than this ("why?", "kya?") is not searched alone
    # A sentence without "?" that starts with one of these words is a question too ("is there a size
    # chart somewhere"). Lower case, one word each.
    question_words: Tuple[str, ...] = ()
    # Phrases that only introduce the question ("just tell me", "bas itna batao ki"): the message without
    # them is searched alone. Lower case; the longest that fits is taken out first.
    lead_ins: Tuple[str, ...] = ()


@dataclass(frozen=True)
class EscalationSettings:
    source: Path
    human_request_intent: str
    topics: Dict[str, TopicRoute]
    urgent_markers: PhraseList
    turn_limit: int
    resolution_intents: List[str]
    kb_path: Path
    kb_model: str
    kb_precision: str  # "float" or "int8" (components/onnx_encoder.py)
    kb_answer_threshold: float
    kb_cite_links: bool
    kb_follow_up_context: bool
    kb_follow_up_keeps_topic: Optional[FollowUpKeepsTopic]  # None: a message answered alone is always answered alone
    kb_elliptical_follow_ups: Optional[EllipticalFollowUps]  # None: off
    kb_refund_follow_ups: Optional[RefundFollowUps]  # None: off
    kb_detail_follow_ups: Optional[DetailFollowUps]  # None: off
    kb_question_sentences: Optional[QuestionSentences]  # None: off
    # {entry id: topic intent}: a yes with an order number right after that entry's answer hands off with that topic
    kb_go_ahead: Dict[str, str]
    inbox_timeout_seconds: float
    inbox_attempts: int
    default_eta_text: str
    messages: Dict[str, Any]

    def intro(self, reason: str, topic: Optional[str]) -> str:
        intro = self.messages["intro"][reason]
        if isinstance(intro, dict):
            return str(intro.get(topic) or next(iter(intro.values())))
        return str(intro)


def _require(mapping: Dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise SettingsError(f"{where}: missing `{key}`")
    return mapping[key]


def parse_settings(document: Dict[str, Any], source: Path) -> EscalationSettings:
    name = str(source)
    human = _require(document, "human_request", name)
    topics_section = dict(_require(document, "topics", name))
    markers = topics_section.pop("urgent_markers", []) or []
    topics = {}
    for intent, route in topics_section.items():
        where = f"{name}: topics.{intent}"
        priority = route.get("priority", "normal")
        if priority not in PRIORITIES:
            raise SettingsError(f"{where}: priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        topics[intent] = TopicRoute(
            intent=intent,
            topic=str(_require(route, "topic", where)),
            tags=[str(t).lower() for t in route.get("tags") or []],
            priority=priority,
        )
    turns = _require(document, "unresolved_turns", name)
    limit = _require(turns, "limit", f"{name}: unresolved_turns")
    if not isinstance(limit, int) or limit < 1:
        raise SettingsError(f"{name}: unresolved_turns.limit must be a whole number >= 1, got {limit!r}")
    kb = _require(document, "knowledge_base", name)
    threshold = float(_require(kb, "answer_threshold", f"{name}: knowledge_base"))
    if not 0.0 <= threshold <= 1.0:
        raise SettingsError(f"{name}: knowledge_base.answer_threshold must be between 0 and 1")
    inbox = document.get("inbox") or {}
    messages = _require(document, "messages", name)
    for key in ("assigned", "queued", "inbox_unreachable", "bot_unavailable"):
        _require(messages, key, f"{name}: messages")
    intro = _require(messages, "intro", f"{name}: messages")
    for reason in REASONS:
        _require(intro, reason, f"{name}: messages.intro")
    for route in topics.values():
        if route.topic not in (intro["topic"] if isinstance(intro["topic"], dict) else {}):
            raise SettingsError(f"{name}: messages.intro.topic has no text for topic '{route.topic}'")
    kb_path = Path(str(_require(kb, "path", f"{name}: knowledge_base")))
    kb_precision = kb.get("precision", "float")
    if kb_precision not in PRECISIONS:
        raise SettingsError(f"{name}: knowledge_base.precision must be {' or '.join(PRECISIONS)}, got {kb_precision!r}")
    follow_up_context = kb.get("follow_up_context", True)
    if not isinstance(follow_up_context, bool):
        raise SettingsError(f"{name}: knowledge_base.follow_up_context must be true or false, got {follow_up_context!r}")
    keeps_topic = _follow_up_keeps_topic(kb.get("follow_up_keeps_topic", {}), f"{name}: knowledge_base.follow_up_keeps_topic")
    elliptical = _elliptical_follow_ups(
        kb.get("elliptical_follow_ups", {}), f"{name}: knowledge_base.elliptical_follow_ups",
        hand_off_intents=[str(human.get("intent", "request_human")), *topics],
    )
    if elliptical is not None and elliptical.rescue_min_probability is not None \
            and elliptical.rescue_min_probability < threshold:
        # A message the NLU could not place must not be answered on less evidence than a plain question.
        raise SettingsError(f"{name}: knowledge_base.elliptical_follow_ups.rescue_min_probability "
                            f"({elliptical.rescue_min_probability}) must be at least answer_threshold ({threshold})")
    question_sentences = _question_sentences(
        kb.get("question_sentences", {}), f"{name}: knowledge_base.question_sentences"
    )
    refund_follow_ups = _refund_follow_ups(kb.get("refund_follow_ups", False),
                                           f"{name}: knowledge_base.refund_follow_ups")
    detail_follow_ups = _detail_follow_ups(kb.get("detail_follow_ups", False),
                                           f"{name}: knowledge_base.detail_follow_ups")
    go_ahead = _go_ahead(kb.get("go_ahead") or {}, f"{name}: knowledge_base.go_ahead", topics)
    return EscalationSettings(
        source=source,
        human_request_intent=str(human.get("intent", "request_human")),
        topics=topics,
        urgent_markers=PhraseList(markers),
        turn_limit=limit,
        resolution_intents=[str(i) for i in turns.get("resolution_intents") or []],
        kb_path=kb_path if kb_path.is_absolute() else source.parent / kb_path,
        kb_model=str(kb.get("model", "all-MiniLM-L6-v2")),
        kb_precision=kb_precision,
        kb_answer_threshold=threshold,
        kb_cite_links=bool(kb.get("cite_links", True)),
        kb_follow_up_context=follow_up_context,
        kb_follow_up_keeps_topic=keeps_topic,
        kb_elliptical_follow_ups=elliptical,
        kb_refund_follow_ups=refund_follow_ups,
        kb_detail_follow_ups=detail_follow_ups,
        kb_question_sentences=question_sentences,
        kb_go_ahead=go_ahead,
        inbox_timeout_seconds=float(inbox.get("timeout_seconds", 2.0)),
        inbox_attempts=int(inbox.get("attempts", 2)),
        default_eta_text=str(inbox.get("default_eta_text", "soon")),
        messages=messages,
    )


def _switch_section(section: Any, where: str, keys: List[str]) -> Optional[Dict[str, Any]]:
    """An on/off rule's settings: false: None (off); nothing or true: {} (on, defaults); a mapping with
    only `keys`: itself."""
    if section is False:
        return None
    if section is None or section is True:
        return {}
    if not isinstance(section, dict):
        raise SettingsError(f"{where} must be false or a mapping with {', '.join(keys)}")
    unknown = set(section) - set(keys)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} ({', '.join(keys)})")
    return section


def _max_words(section: Dict[str, Any], where: str, default: int) -> int:
    words = section.get("max_words", default)
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise SettingsError(f"{where}.max_words must be a whole number >= 1, got {words!r}")
    return words


def _follow_up_keeps_topic(section: Any, where: str) -> Optional[FollowUpKeepsTopic]:
    """false: off; a mapping (missing keys take the defaults) or nothing: on."""
    section = _switch_section(section, where, ["max_words", "max_probability", "max_odds"])
    if section is None:
        return None
    defaults = FollowUpKeepsTopic()
    words = _max_words(section, where, defaults.max_words)
    probability = section.get("max_probability", defaults.max_probability)
    odds = section.get("max_odds", defaults.max_odds)
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0.0 < probability <= 1.0:
        raise SettingsError(f"{where}.max_probability must be a number above 0 and at most 1, got {probability!r}")
    if isinstance(odds, bool) or not isinstance(odds, (int, float)) or odds < 1.0:
        raise SettingsError(f"{where}.max_odds must be a number >= 1, got {odds!r}")
    return FollowUpKeepsTopic(max_words=words, max_probability=float(probability), max_odds=float(odds))


def _go_ahead(section: Any, where: str, topics: Dict[str, TopicRoute]) -> Dict[str, str]:
    """{entry id: topic intent}; each intent must be one of `topics` (the hand-off needs its topic, tags and
    priority). Entry ids are checked against the knowledge base by the tests (the KB is not loaded here)."""
    if not isinstance(section, dict):
        raise SettingsError(f"{where} must map knowledge-base entry ids to topic intents, got {section!r}")
    go_ahead: Dict[str, str] = {}
    for entry, intent in section.items():
        if intent not in topics:
            raise SettingsError(f"{where}.{entry}: {intent!r} is not a topic intent ({', '.join(topics)})")
        go_ahead[str(entry)] = str(intent)
    return go_ahead


def _refund_follow_ups(section: Any, where: str) -> Optional[RefundFollowUps]:
    """false or absent: off; a mapping with `entries` (entry id: the words that switch to another subject), `cues`
    and `max_words`."""
    section = _switch_section(section, where, ["entries", "cues", "max_words"])
    if not section:
        return None
    entries = section.get("entries")
    if not isinstance(entries, dict) or not entries:
        raise SettingsError(f"{where}.entries must map knowledge-base entry ids to lists of phrases")
    cues = _phrases(section.get("cues"), f"{where}.cues", one_word=False)
    if not cues:
        raise SettingsError(f"{where}.cues must list at least one phrase")
    return RefundFollowUps(
        entries=tuple((str(entry), _phrases(words, f"{where}.entries.{entry}", one_word=False))
                      for entry, words in entries.items()),
        cues=cues, max_words=_max_words(section, where, RefundFollowUps.max_words))


def _detail_follow_ups(section: Any, where: str) -> Optional[DetailFollowUps]:
    """false or absent: off; a mapping with `details` (a list of {asked: [phrases], answer_has: text}), `switches`
    and `max_words`."""
    section = _switch_section(section, where, ["details", "switches", "max_words"])
    if not section:
        return None
    details = section.get("details")
    if not isinstance(details, list) or not details:
        raise SettingsError(f"{where}.details must be a list of {{asked: [phrases], answer_has: text}}")
    parsed = []
    for i, detail in enumerate(details):
        if not isinstance(detail, dict) or set(detail) != {"asked", "answer_has"}:
            raise SettingsError(f"{where}.details[{i}] must have exactly `asked` (phrases) and `answer_has` (text), "
                                f"got {detail!r}")
        asked = _phrases(detail["asked"], f"{where}.details[{i}].asked", one_word=False)
        has = detail["answer_has"]
        if not asked or not isinstance(has, str) or not has.strip():
            raise SettingsError(f"{where}.details[{i}] needs at least one `asked` phrase and a non-empty `answer_has`")
        parsed.append((asked, has))
    switches = _phrases(section.get("switches") or [], f"{where}.switches", one_word=False)
    return DetailFollowUps(details=tuple(parsed), switches=switches,
                           max_words=_max_words(section, where, DetailFollowUps.max_words))


def _elliptical_follow_ups(
    section: Any, where: str, hand_off_intents: Sequence[str] = ()
) -> Optional[EllipticalFollowUps]:
    """false: off; a mapping (missing keys take the defaults) or nothing: on. `hand_off_intents` (the human
    request and the topics) can never be `rescue_intents`: patterns 2 and 3 are never answered."""
    section = _switch_section(section, where, ["max_words", "min_share", "max_near_miss_share", "near_miss_min_words",
                                               "not_topic_words", "topic_words", "rescue_fallbacks", "rescue_intents",
                                               "rescue_max_hand_off_confidence", "rescue_min_probability"])
    if section is None:
        return None
    defaults = EllipticalFollowUps()
    words = _max_words(section, where, defaults.max_words)
    share = section.get("min_share", defaults.min_share)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share < 1.0:
        raise SettingsError(f"{where}.min_share must be a number from 0 up to (not including) 1, got {share!r}")
    near_miss = section.get("max_near_miss_share", defaults.max_near_miss_share)
    if near_miss is not None and (isinstance(near_miss, bool) or not isinstance(near_miss, (int, float))
                                  or not 0.0 < near_miss <= 1.0):
        raise SettingsError(f"{where}.max_near_miss_share must be a number above 0 and at most 1 (or null: no limit), "
                            f"got {near_miss!r}")
    near_miss_words = section.get("near_miss_min_words", defaults.near_miss_min_words)
    if isinstance(near_miss_words, bool) or not isinstance(near_miss_words, int) or near_miss_words < 1:
        raise SettingsError(f"{where}.near_miss_min_words must be a whole number of at least 1, "
                            f"got {near_miss_words!r}")
    ignored = _phrases(section.get("not_topic_words"), f"{where}.not_topic_words", one_word=True)
    declared = section.get("topic_words") or {}
    if not isinstance(declared, dict) or not all(isinstance(entry, str) and entry for entry in declared):
        raise SettingsError(f"{where}.topic_words must map knowledge-base entry ids to lists of single words")
    topic_words = tuple((entry, _phrases(listed, f"{where}.topic_words.{entry}", one_word=True))
                        for entry, listed in declared.items())
    clash = sorted({word for _entry, listed in topic_words for word in listed}.intersection(ignored))
    if clash:
        raise SettingsError(f"{where}: {', '.join(clash)} cannot be both a topic word and in not_topic_words")
    rescue = section.get("rescue_fallbacks", defaults.rescue_fallbacks)
    if not isinstance(rescue, bool):
        raise SettingsError(f"{where}.rescue_fallbacks must be true or false, got {rescue!r}")
    rescue_intents = (_phrases(section["rescue_intents"], f"{where}.rescue_intents", one_word=True)
                      if "rescue_intents" in section else defaults.rescue_intents)
    if rescue and not rescue_intents:
        raise SettingsError(f"{where}.rescue_intents must name at least one intent when rescue_fallbacks is true")
    barred = sorted(set(rescue_intents).intersection(hand_off_intents))
    if barred:
        raise SettingsError(f"{where}.rescue_intents: {', '.join(barred)} always hand off (human request or topic)")
    ceiling = section.get("rescue_max_hand_off_confidence", defaults.rescue_max_hand_off_confidence)
    if isinstance(ceiling, bool) or not isinstance(ceiling, (int, float)) or not 0.0 < ceiling <= 1.0:
        raise SettingsError(f"{where}.rescue_max_hand_off_confidence must be a number above 0 and at most 1, "
                            f"got {ceiling!r}")
    floor = section.get("rescue_min_probability", defaults.rescue_min_probability)
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0.0 < floor <= 1.0):
        raise SettingsError(f"{where}.rescue_min_probability must be a number above 0 and at most 1 (or null: off), "
                            f"got {floor!r}")
    return EllipticalFollowUps(max_words=words, min_share=float(share),
                               max_near_miss_share=None if near_miss is None else float(near_miss),
                               near_miss_min_words=near_miss_words, not_topic_words=ignored, topic_words=topic_words,
                               rescue_fallbacks=rescue, rescue_intents=rescue_intents,
                               rescue_max_hand_off_confidence=float(ceiling),
                               rescue_min_probability=None if floor is None else float(floor))


def _question_sentences(section: Any, where: str) -> Optional[QuestionSentences]:
    """false: off; a mapping (missing keys take the defaults) or nothing: on."""
    section = _switch_section(section, where, ["min_words", "question_words", "lead_ins"])
    if section is None:
        return None
    words = section.get("min_words", QuestionSentences().min_words)
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise SettingsError(f"{where}.min_words must be a whole number >= 1, got {words!r}")
    question_words = _phrases(section.get("question_words"), f"{where}.question_words", one_word=True)
    lead_ins = _phrases(section.get("lead_ins"), f"{where}.lead_ins", one_word=False)
    return QuestionSentences(min_words=words, question_words=question_words, lead_ins=lead_ins)


def _phrases(value: Any, where: str, one_word: bool) -> Tuple[str, ...]:
    """A designer's list of lower-cased phrases (absent: none)."""
    if value is None:
        return ()
    what = "single words" if one_word else "phrases"
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise SettingsError(f"{where} must be a list of {what}, got {value!r}")
    phrases = [" ".join(item.lower().split()) for item in value]
    if one_word and any(" " in phrase for phrase in phrases):
        raise SettingsError(f"{where} must be a list of {what}, got {value!r}")
    return tuple(dict.fromkeys(phrases))


def load_settings(path: Optional[Path] = None) -> EscalationSettings:
    path = Path(path or os.environ.get(SETTINGS_ENV) or PROJECT_ROOT / "escalation.yml")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SettingsError(f"escalation settings not found: {path} (set {SETTINGS_ENV})") from error
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: expected a mapping")
    return parse_settings(document, path)


# The last valid escalation.yml the action server re-read while running (actions/kb_reload.py).
_reloaded: Optional[EscalationSettings] = None


def settings() -> EscalationSettings:
    """The process-wide settings (read on first use; replaced by a live reload of the action server)."""
    return _reloaded or _settings_at_start()


@lru_cache(maxsize=1)
def _settings_at_start() -> EscalationSettings:
    return load_settings()


def use_reloaded(config: EscalationSettings) -> None:
    """From now on settings() is `config` (one assignment: a reader sees the old or the new whole)."""
    global _reloaded
    _reloaded = config


@lru_cache(maxsize=1)
def action_messages() -> Dict[str, Any]:
    """messages.yml: texts that custom actions send."""
    path = Path(os.environ.get("ACTION_MESSAGES") or PROJECT_ROOT / "messages.yml")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        document["order_status_form"]["ask_order_number"]
    except (TypeError, KeyError) as error:
        raise SettingsError(f"{path}: missing order_status_form.ask_order_number") from error
    return document
