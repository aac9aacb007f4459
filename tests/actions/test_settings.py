"""escalation.yml mistakes fail at start-up with a message that names the setting."""
from __future__ import annotations

import copy

import pytest
import yaml

from actions.settings import PROJECT_ROOT, SettingsError, parse_settings

SHIPPED = yaml.safe_load((PROJECT_ROOT / "escalation.yml").read_text())


def broken(mutate):
    document = copy.deepcopy(SHIPPED)
    mutate(document)
    return document


def test_shipped_settings_parse():
    settings = parse_settings(copy.deepcopy(SHIPPED), PROJECT_ROOT / "escalation.yml")
    assert settings.turn_limit == 3
    assert {"refund", "complaint", "urgent"} <= {route.topic for route in settings.topics.values()}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["unresolved_turns"].update(limit=0), "unresolved_turns.limit"),
        (lambda d: d["topics"]["complaint"].update(priority="critical"), "priority must be one of"),
        (lambda d: d["knowledge_base"].update(answer_threshold=1.5), "between 0 and 1"),
        (lambda d: d["messages"].pop("assigned"), "missing `assigned`"),
        (lambda d: d["messages"]["intro"]["topic"].pop("refund"), "no text for topic 'refund'"),
        (lambda d: d.pop("human_request"), "missing `human_request`"),
    ],
)
def test_bad_settings_name_the_problem(mutate, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(broken(mutate), PROJECT_ROOT / "escalation.yml")
