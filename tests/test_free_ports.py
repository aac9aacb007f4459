"""Suites that run side by side never get the same test port (tests/free_ports.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import free_ports

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def claims(tmp_path, monkeypatch):
    monkeypatch.setattr(free_ports, "CLAIMS_DIR", tmp_path / "claims")
    monkeypatch.setattr(free_ports, "_handed_out", set())
    # These tests are about claims, not about what else listens on the machine: suites running beside them
    # (the production profile's processes) may hold the very ports they pick.
    monkeypatch.setattr(free_ports, "_bindable", lambda port: True)
    return tmp_path / "claims"


def picks(monkeypatch, *ports: int) -> None:
    """The random choices free_port will make, in order."""
    sequence = iter(ports)
    monkeypatch.setattr(free_ports.random, "randint", lambda low, high: next(sequence))


def test_a_port_another_running_suite_claimed_is_not_handed_out(claims, monkeypatch):
    other_suite = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tests import free_ports as f; f.CLAIMS_DIR = __import__('pathlib')."
                               f"Path({str(claims)!r}); f._bindable = lambda p: True; f.random.randint = lambda a, b: 23456; "
                               "print(f.free_port(), "
                               "flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other_suite.stdout.readline().strip() == "23456"
        picks(monkeypatch, 23456, 23457)
        assert free_ports.free_port() == 23457
    finally:
        other_suite.stdin.close()
        other_suite.wait(timeout=30)


def test_a_claim_left_by_a_finished_suite_is_taken_over(claims, monkeypatch):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    claims.mkdir(parents=True)
    (claims / "23456").write_text(finished.stdout.strip())
    picks(monkeypatch, 23456)
    assert free_ports.free_port() == 23456
    assert (claims / "23456").read_text() == str(__import__("os").getpid())


def test_erlang_neighbours_are_claimed_with_their_port(claims, monkeypatch):
    monkeypatch.setattr(free_ports, "ephemeral_range", lambda: (60000, 61000))
    picks(monkeypatch, 12345)
    assert free_ports.free_port(erlang_neighbours=True) == 12345
    assert sorted(int(p.name) for p in claims.iterdir()) == [12345, 32345, 32346]
