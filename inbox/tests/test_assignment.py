"""Assignment rules from inbox/config/assignment.yml, evaluated in order."""

import os
import shutil

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from inbox.context import Inbox
from inbox.models import Agent
from inbox.services.assignment.config import AssignmentConfigSource, EnvironmentOverrides, load_assignment_config
from inbox.settings import INBOX_DIR
from inbox.tests.conftest import handoff_payload, post_handoff
from inbox.web.app import create_app


def set_status(inbox, **statuses):
    with inbox.db.write() as session:
        for agent in session.scalars(select(Agent)):
            if agent.login in statuses:
                agent.status = statuses[agent.login]


def set_capacity(inbox, login, capacity):
    with inbox.db.write() as session:
        session.scalars(select(Agent).where(Agent.login == login)).one().capacity = capacity


def assign(client, number: int, **overrides):
    wa_id = f"91980000{number:04d}"
    payload = handoff_payload(
        handoff_id=f"hf_{number}",
        conversation_id=wa_id,
        customer={"whatsapp_id": wa_id, "name": f"Customer {number}"},
        **overrides,
    )
    return post_handoff(client, payload).json()


def test_each_topic_goes_to_its_team(client, agents):
    assert assign(client, 1, topic="refund", tags=["refund"])["assignee"]["first_name"] == "Anita"
    assert assign(client, 2, topic="complaint", tags=["complaint"])["assignee"]["first_name"] == "Priya"
    assert assign(client, 3, topic="urgent", tags=["urgent"])["assignee"]["first_name"] == "Rahul"


def test_an_urgent_tag_without_a_topic_still_reaches_escalations(client, agents):
    body = assign(client, 1, reason="customer_request", topic=None, tags=["urgent"])
    assert body["team"] == "Escalations" and body["assignee"]["first_name"] == "Rahul"


def test_vip_customers_listed_in_the_yaml_go_to_the_vip_agents(settings, clock, agents, tmp_path):
    path = tmp_path / "assignment.yml"
    path.write_text(
        (INBOX_DIR / "config" / "assignment.yml")
        .read_text()
        .replace("vip_customers: []", 'vip_customers: ["+91 98000 00007"]')
    )
    vip_inbox = Inbox(settings.model_copy(update={"inbox_assignment_config": path}), clock=clock)
    try:
        with TestClient(create_app(vip_inbox, run_background_workers=False)) as vip_client:
            body = assign(vip_client, 7, reason="low_confidence", topic=None, tags=[])
            other = assign(vip_client, 8, reason="low_confidence", topic=None, tags=[])
    finally:
        vip_inbox.close()
    assert body["team"] == "VIP" and body["assignee"]["first_name"] == "Priya"
    assert other["team"] is None


def test_round_robin_takes_turns_among_online_agents(client, agents, inbox, clock):
    set_status(inbox, priya="away")
    generic = dict(reason="customer_request", topic=None, tags=[])
    names = []
    for number in range(1, 5):
        names.append(assign(client, number, **generic)["assignee"]["first_name"])
        clock.advance(seconds=30)
    assert names == ["Anita", "Rahul", "Anita", "Rahul"]


def test_agents_at_capacity_are_skipped_and_full_team_means_queue_with_sla_eta(client, agents, inbox):
    set_capacity(inbox, "anita", 1)
    first = assign(client, 1)
    second = assign(client, 2)
    assert first["assignee"]["first_name"] == "Anita"
    # Anita is online but full: the refund waits in the Returns queue, and the SLA promise holds.
    assert second["status"] == "queued" and second["team"] == "Returns"
    assert second["eta_text"] == "within 5 minutes"


def test_nobody_of_the_team_online_promises_the_next_opening(client, agents, inbox):
    set_status(inbox, anita="away")
    body = assign(client, 1)
    assert body["status"] == "queued" and body["team"] == "Returns"
    assert body["eta_text"] == "by 9:00 AM tomorrow"


def test_edited_rules_are_picked_up_and_a_broken_file_keeps_the_old_ones(tmp_path, monkeypatch):
    path = tmp_path / "assignment.yml"
    shutil.copy(INBOX_DIR / "config" / "assignment.yml", path)
    monkeypatch.setattr(AssignmentConfigSource, "CHECK_INTERVAL_SECONDS", 0.0)
    source = AssignmentConfigSource(path)
    assert source.current().sla.first_response_minutes == 5

    path.write_text(path.read_text().replace("first_response_minutes: 5", "first_response_minutes: 10"))
    _touch_later(path)
    assert source.current().sla.first_response_minutes == 10

    path.write_text("rules:\n  - rule: pick_at_random\n")
    _touch_later(path)
    assert source.current().sla.first_response_minutes == 10  # invalid file: previous rules stay


def test_invalid_yaml_is_explained(tmp_path):
    path = tmp_path / "assignment.yml"
    path.write_text("timezone: Mars/Olympus\n")
    with pytest.raises(ValueError, match="unknown time zone"):
        load_assignment_config(path)
    path.write_text("business_hours:\n  funday: '09:00-10:00'\n")
    with pytest.raises(ValueError, match="unknown weekday"):
        load_assignment_config(path)


def test_environment_overrides_time_zone_sla_and_business_hours():
    overrides = EnvironmentOverrides(timezone="Asia/Dubai", sla_minutes=15, business_hours="mon-fri 10:00-19:00")
    config = load_assignment_config(INBOX_DIR / "config" / "assignment.yml", overrides)
    assert config.timezone == "Asia/Dubai" and config.sla.first_response_minutes == 15
    assert config.business_hours == {
        "mon": "10:00-19:00",
        "tue": "10:00-19:00",
        "wed": "10:00-19:00",
        "thu": "10:00-19:00",
        "fri": "10:00-19:00",
        "sat": "closed",
        "sun": "closed",
    }
    with pytest.raises(ValueError, match="mon-sat 09:00-21:00"):
        load_assignment_config(INBOX_DIR / "config" / "assignment.yml", EnvironmentOverrides(business_hours="weekdays"))


def test_environment_settings_that_win_over_the_file_are_logged_at_start_up(caplog):
    overrides = EnvironmentOverrides(sla_minutes=15, business_hours="mon-sun 00:00-24:00")
    with caplog.at_level("WARNING"):
        AssignmentConfigSource(INBOX_DIR / "config" / "assignment.yml", overrides)
    logged = [record.getMessage() for record in caplog.records]
    assert any("INBOX_BUSINESS_HOURS='mon-sun 00:00-24:00' wins over business_hours" in line for line in logged)
    assert any("INBOX_SLA_MINUTES=15 wins over sla.first_response_minutes 5" in line for line in logged)
    assert not any("INBOX_TIMEZONE" in line for line in logged)  # not set: the file's time zone is used


def test_the_hours_have_no_second_source_in_code(tmp_path):
    path = tmp_path / "assignment.yml"
    path.write_text("rules:\n  - rule: queue\n")
    with pytest.raises(ValueError, match="timezone[\\s\\S]*business_hours|business_hours[\\s\\S]*timezone"):
        load_assignment_config(path)


def _touch_later(path):
    """A new modification time, as an editor's save would give."""
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 1))
