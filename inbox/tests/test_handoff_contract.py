"""The inbox's side of contracts/handoff.yml: the API accepts exactly its reasons and priorities, labels
come from it, and a hand-off on the event stream is read from its slots."""

from __future__ import annotations

import typing

import yaml

from inbox.schemas import HandoffRequest, Priority, Reason
from inbox.services.handoff_contract import HANDOFF_SLOTS, REASON_LABELS
from inbox.settings import REPO_ROOT
from inbox.tests.conftest import handoff_payload, login, post_handoff

CONTRACT = yaml.safe_load((REPO_ROOT / "contracts" / "handoff.yml").read_text())


def test_the_api_accepts_exactly_the_contract_reasons_and_priorities():
    assert list(typing.get_args(Reason)) == list(CONTRACT["reasons"])
    assert list(typing.get_args(Priority)) == CONTRACT["priorities"]
    assert "bot_unavailable" in typing.get_args(Reason)
    assert HandoffRequest.model_fields["reason"].annotation is Reason


def test_agents_read_the_contract_labels():
    assert REASON_LABELS == {name: reason["label"] for name, reason in CONTRACT["reasons"].items()}


def test_the_event_stream_reads_the_contract_slots_in_order():
    slots = [step["slot"] for step in CONTRACT["handoff_events"] if isinstance(step, dict)]
    assert list(HANDOFF_SLOTS) == slots
    assert CONTRACT["handoff_events"][-1] == "pause"


def test_the_dashboard_chart_has_a_series_for_every_reason_including_bot_errors(client, agents):
    payload = handoff_payload(handoff_id="hf_contract_bot_error", reason="bot_unavailable", topic=None, tags=[])
    assert post_handoff(client, payload).status_code in (200, 201)
    login(client, "anita")
    page = client.get("/dashboard?days=7").text
    legend = page.split('class="legend"')[1].split("</ul>")[0]
    assert [label for label in REASON_LABELS.values() if label in legend] == list(REASON_LABELS.values())
    assert 'class="series-4"' in page  # bot_unavailable's bar
