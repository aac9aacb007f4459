"""What the connector takes from outside its package, read with its own few lines: services meet through
files, not imports (the action server's package is not the connector's to import).

- contracts/handoff.yml: the reason, tracker events and handoff_id of the hand-off the connector writes when
  the bot could not answer (connectors/unanswered_turns.py).
- escalation.yml (ESCALATION_SETTINGS names another file, as for the action server and the NLU): the
  designer's `messages.bot_unavailable` and the `inbox.default_eta_text` it is completed with.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONTRACT_PATH = PROJECT_ROOT / "contracts" / "handoff.yml"
SETTINGS_ENV = "ESCALATION_SETTINGS"


@lru_cache(maxsize=1)
def contract() -> Dict[str, Any]:
    return yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))


def handoff_id_for_message(sender_id: str, timestamp: Optional[float], text: Optional[str]) -> str:
    """The hand-off id of a customer message: the same id `action_handoff` gives a hand-off for it."""
    rule = contract()["handoff_id"]
    seed = rule["seed"].format(sender_id=sender_id, timestamp=timestamp, text=text or "")
    return rule["prefix"] + hashlib.sha256(seed.encode("utf-8")).hexdigest()[: rule["sha256_hex_digits"]]


def bot_unavailable_message(path: Optional[Path] = None) -> str:
    """The customer's text when the bot could not answer; a clear error at start-up when it is missing."""
    path = Path(path or os.environ.get(SETTINGS_ENV) or PROJECT_ROOT / "escalation.yml")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise ValueError(f"escalation settings not found: {path} (set {SETTINGS_ENV})") from error
    template = (document.get("messages") or {}).get("bot_unavailable")
    if not template:
        raise ValueError(f"{path}: missing `messages.bot_unavailable` (what the customer reads when the bot fails)")
    eta = (document.get("inbox") or {}).get("default_eta_text", "soon")
    return str(template).format(eta=eta).strip()
