"""contracts/handoff.yml as the inbox reads it: the services share that file, not code."""

from __future__ import annotations

from pathlib import Path

import yaml

CONTRACT_PATH = Path(__file__).resolve().parents[2] / "contracts" / "handoff.yml"
_CONTRACT = yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))

REASONS: tuple[str, ...] = tuple(_CONTRACT["reasons"])
REASON_LABELS: dict[str, str] = {name: reason["label"] for name, reason in _CONTRACT["reasons"].items()}
PRIORITIES: tuple[str, ...] = tuple(_CONTRACT["priorities"])
# The slots of a hand-off, in the order the bot writes them (the pause follows them).
HANDOFF_SLOTS: tuple[str, ...] = tuple(
    step["slot"] for step in _CONTRACT["handoff_events"] if isinstance(step, dict) and "slot" in step
)
