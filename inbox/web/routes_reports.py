"""Dashboard and knowledge-base usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from inbox.models import Agent
from inbox.services.handoff_contract import REASON_LABELS, REASONS
from inbox.services.knowledge_base import KnowledgeBaseUsage
from inbox.services.metrics import DashboardMetrics
from inbox.services.team_metrics import csat_report, headline
from inbox.web.auth import current_agent, inbox_of
from inbox.web.charts import stacked_bar_chart
from inbox.web.rendering import render

router = APIRouter()
CurrentAgent = Annotated[Agent, Depends(current_agent)]
PERIODS = {1: "Today (24 h)", 7: "7 days", 30: "30 days"}


@router.get("/dashboard")
def dashboard(request: Request, agent: CurrentAgent, days: int = 7):
    days = days if days in PERIODS else 7
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        report = DashboardMetrics(session, inbox.assignment_engine().hours, inbox.clock()).report(days)
        tz = inbox.assignment_engine().hours.tz
        csat = csat_report(session, report.since, inbox.clock(), tz)
        month = headline(session, inbox.clock(), tz)
    chart = stacked_bar_chart(
        [(bar.day.strftime("%d %b"), bar.counts) for bar in report.daily], series=list(REASONS)
    )
    return render(
        request,
        "dashboard.html",
        {
            "agent": agent,
            "report": report,
            "periods": PERIODS,
            "chart": chart,
            "reason_labels": REASON_LABELS,
            "csat": csat,
            "headline": month,
        },
    )


@router.get("/knowledge-base")
def knowledge_base(request: Request, agent: CurrentAgent):
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        rows, unmatched, error = KnowledgeBaseUsage(session, inbox.settings.kb_path).report()
    return render(
        request,
        "knowledge_base.html",
        {"agent": agent, "rows": rows, "unmatched": unmatched, "error": error, "kb_path": inbox.settings.kb_path},
    )
