"""Dashboard numbers of issue 17: satisfaction (CSAT) per agent, per hand-off pattern and per week with
the response rate, the 'Not good' answers for the team lead, and the seed's headline numbers for the
bot this month."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inbox.models import Conversation, CsatSurvey, Handoff, KbMatch, Message
from inbox.services.metrics import percentile

SENT = ("asked", "answered")  # the customer saw the question
# The question never reached the customer: refused or never confirmed (failed), or WhatsApp took it
# and then reported it could not deliver it (undelivered). Shown apart, not in the response rate.
NOT_DELIVERED = ("failed", "undelivered")


@dataclass
class CsatRow:
    label: str
    sent: int = 0
    answered: int = 0
    satisfied: int = 0  # "Great"
    not_good: int = 0
    points: int = 0

    @property
    def csat_percent(self) -> float | None:
        """The usual CSAT: the share of answers that are the top one ("Great")."""
        return round(100 * self.satisfied / self.answered, 1) if self.answered else None

    @property
    def average(self) -> float | None:
        return round(self.points / self.answered, 2) if self.answered else None

    @property
    def response_rate(self) -> float | None:
        return round(100 * self.answered / self.sent, 1) if self.sent else None

    def add(self, survey: CsatSurvey) -> None:
        if survey.status in SENT:
            self.sent += 1
        if survey.status == "answered":
            self.answered += 1
            self.points += survey.score or 0
            self.satisfied += survey.rating == "great"
            self.not_good += survey.rating == "not_good"


@dataclass
class CsatReport:
    total: CsatRow
    skipped: int
    not_delivered: list[CsatSurvey]  # in the period, latest first, with the reason (skip_reason)
    by_agent: list[CsatRow]
    by_reason: list[CsatRow]
    by_week: list[CsatRow]
    flagged: list[CsatSurvey]


def csat_report(session: Session, since: datetime, now: datetime, tz, weeks: int = 8) -> CsatReport:
    """Per agent and pattern over the dashboard's period; per week over the last `weeks` weeks."""
    week_start = (now.astimezone(tz) - timedelta(days=now.astimezone(tz).weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) - timedelta(weeks=weeks - 1)
    surveys = session.scalars(select(CsatSurvey).where(CsatSurvey.asked_at >= min(since, week_start))).all()
    total, by_agent, by_reason = CsatRow("All"), {}, {}
    by_week = {week_start + timedelta(weeks=offset): None for offset in range(weeks)}
    weekly: dict[datetime, CsatRow] = {}
    skipped, not_delivered = 0, []
    for survey in surveys:
        week = (survey.asked_at.astimezone(tz) - timedelta(days=survey.asked_at.astimezone(tz).weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        if week in by_week:
            weekly.setdefault(week, CsatRow(f"Week of {week:%d %b}")).add(survey)
        if survey.asked_at < since:
            continue
        skipped += survey.status == "skipped"
        if survey.status in NOT_DELIVERED:
            not_delivered.append(survey)
        total.add(survey)
        name = survey.agent.name if survey.agent else "(no agent)"
        by_agent.setdefault(name, CsatRow(name)).add(survey)
        reason = survey.reason or "(unknown)"
        by_reason.setdefault(reason, CsatRow(reason)).add(survey)
    flagged = session.scalars(
        select(CsatSurvey)
        .where(CsatSurvey.flagged.is_(True), CsatSurvey.flag_cleared_at.is_(None))
        .order_by(CsatSurvey.answered_at.desc())
        .limit(50)
    ).all()
    return CsatReport(
        total=total,
        skipped=skipped,
        not_delivered=sorted(not_delivered, key=lambda survey: survey.asked_at, reverse=True),
        by_agent=sorted(by_agent.values(), key=lambda row: row.label),
        by_reason=sorted(by_reason.values(), key=lambda row: -row.sent),
        by_week=[weekly.get(week) or CsatRow(f"Week of {week:%d %b}") for week in by_week],
        flagged=list(flagged),
    )


@dataclass
class Headline:
    month_label: str
    bot_answers: int  # knowledge-base answers the bot gave this month
    bot_median_seconds: int | None  # customer message -> the bot's next message
    conversations: int
    contained: int
    answers_handed_off: int  # bot answers followed by a hand-off of that conversation within a day

    @property
    def containment_percent(self) -> float | None:
        return round(100 * self.contained / self.conversations, 1) if self.conversations else None

    @property
    def handed_off_percent(self) -> float | None:
        return round(100 * self.answers_handed_off / self.bot_answers, 1) if self.bot_answers else None


LATER_HANDOFF = timedelta(hours=24)  # an answer followed by a hand-off this soon probably did not help


def headline(session: Session, now: datetime, tz) -> Headline:
    """This calendar month in the team's time zone."""
    local = now.astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    answers = session.execute(
        select(KbMatch.conversation_id, KbMatch.matched_at).where(
            KbMatch.answered.is_(True), KbMatch.matched_at >= start
        )
    ).all()
    handoffs: dict[int, list[datetime]] = defaultdict(list)
    for conversation_id, created_at in session.execute(
        select(Handoff.conversation_id, Handoff.created_at).where(Handoff.created_at >= start)
    ):
        handoffs[conversation_id].append(created_at)
    handed_off = sum(
        1
        for conversation_id, at in answers
        if any(at <= later <= at + LATER_HANDOFF for later in handoffs.get(conversation_id, []))
    )
    # The bot's answer time: each customer message to the bot's next message in the same conversation.
    waits: list[int] = []
    pending: dict[int, datetime] = {}
    rows = session.execute(
        select(Message.conversation_id, Message.role, Message.created_at)
        .where(Message.created_at >= start, Message.role.in_(("customer", "bot", "agent")))
        .order_by(Message.conversation_id, Message.created_at, Message.id)
    )
    for conversation_id, role, at in rows:
        if role == "customer":
            pending.setdefault(conversation_id, at)
        elif role == "bot" and conversation_id in pending:
            waits.append(int((at - pending.pop(conversation_id)).total_seconds()))
        else:
            pending.pop(conversation_id, None)  # a person answered it
    conversations = session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.last_message_at >= start)
    )
    handed = len(handoffs)
    return Headline(
        month_label=f"{local:%B %Y}",
        bot_answers=len(answers),
        bot_median_seconds=percentile(waits, 0.5),
        conversations=conversations or 0,
        contained=max((conversations or 0) - handed, 0),
        answers_handed_off=handed_off,
    )
