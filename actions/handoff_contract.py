"""contracts/handoff.yml as the action server reads it: the services share that file, not code."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

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


def handoff_id_for_message(sender_id: str, timestamp: Optional[float], text: Optional[str]) -> str:
    """The hand-off id of a customer message, as the contract defines it (the connector computes the same)."""
    rule = contract()["handoff_id"]
    seed = rule["seed"].format(sender_id=sender_id, timestamp=timestamp, text=text or "")
    return rule["prefix"] + hashlib.sha256(seed.encode("utf-8")).hexdigest()[: rule["sha256_hex_digits"]]
