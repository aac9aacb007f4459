"""contracts/handoff.yml as the action server reads it: the services share that file, not code."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Tuple

import yaml

CONTRACT_PATH = Path(__file__).resolve().parent.parent / "contracts" / "handoff.yml"


@lru_cache(maxsize=1)
def contract() -> Dict[str, Any]:
    return yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))


def reasons_made_here() -> Tuple[str, ...]:
    """The escalation patterns the action server hands off for (each needs an intro in escalation.yml)."""
    return tuple(name for name, reason in contract()["reasons"].items() if reason["made_by"] == "actions")


def priorities() -> Tuple[str, ...]:
    return tuple(contract()["priorities"])
