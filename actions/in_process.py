"""Whether an action runs inside the Rasa process (connectors/in_process_actions.py) rather than on the action server.

Code that talks to anything outside (the inbox, the order system) calls `require_action_server()` before it does:
inside the Rasa process that stops the action, and Rasa runs it on the action server from the start instead.
"""
from __future__ import annotations

import contextvars

ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("kesar_lane_in_process_action", default=False)


class NeedsActionServer(Exception):
    """Raised inside the Rasa process by an action that must run on the action server."""


def require_action_server(why: str) -> None:
    if ACTIVE.get():
        raise NeedsActionServer(why)
