"""The harness itself: a system that cannot start leaves nothing running (bench/conversation_eval.py --start
uses it too; a missing inbox environment once left a Rasa and an action server running after the run)."""
from __future__ import annotations

import pytest

from tests.e2e.harness import System


def test_a_service_that_cannot_start_stops_the_ones_already_started(tmp_path):
    system = System.configure(tmp_path, slack_url="")
    names = list(system.services)
    broken = names[-1]  # started last, after the others are already running
    for name in names[:-1]:
        system.services[name].command = ["sleep", "600"]
        system.services[name].health_url = "http://127.0.0.1:9/never"  # never healthy: start_all would wait
    system.services[broken].command = [str(tmp_path / "missing-venv" / "bin" / "python"), "-m", "inbox"]

    with pytest.raises(FileNotFoundError):
        system.start_all()

    started = [system.services[name] for name in names[:-1]]
    assert all(service.process is not None for service in started)
    assert [service.process.poll() is not None for service in started] == [True] * len(started)
