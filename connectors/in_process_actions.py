"""Custom actions run inside the Rasa process instead of over HTTP (issue 16: CPU per message).

Rasa 3.6 runs every custom action on the action server: per call it serialises the whole tracker to JSON, posts it,
and the action server parses it, runs the action and answers in JSON again. For the actions that only compute an
answer from the tracker and the files this project ships (the knowledge-base answer, the session start), that round
trip costs more CPU than the action itself. The endpoints file names them:

    action_endpoint:
      url: ...
      in_process_actions: [action_answer_question, action_session_start]

and this module runs those with rasa-sdk's own `ActionExecutor` in the Rasa process: the same action call Rasa
would post (`RemoteAction._action_call_format`), the same answer format, the answer passed through JSON once (so
the types are exactly those the action server would have sent), validated and turned into events by Rasa's own
code. Every other action, and Rasa without the key, runs on the action server as before.

An action that needs anything outside the Rasa process (the inbox, the order system, the connector) does not run
here: such code calls `actions.in_process.require_action_server()` first, which inside this runner raises
`NeedsActionServer`, and the call goes to the action server instead, from the start (nothing before that point
reaches outside the process, so running it again there repeats only computation, e.g. the knowledge-base search).
A hand-off from the knowledge-base action (no entry scores high enough)
is the common case: the inbox, its token and its retries stay the action server's. An action that fails here for
any other reason also falls back to the action server, with one WARNING line (no message text in it).

The actions load right after Rasa has loaded its model and before it serves (in a thread, so the event loop stays
free): the knowledge base and escalation.yml's action settings load in the Rasa process as on the action server, and
reload live there too (actions/kb_reload.py; each process fits a changed knowledge base itself, as each action server
does). With the knowledge base's fit cached (actions/kb_fit_cache.py) that adds a few seconds to a start. A load that
fails leaves every action on the action server (one ERROR line). The action server keeps serving the other actions,
the fallbacks and the inbox's /kb/ endpoints. Off unless the endpoints file names actions; RASA_IN_PROCESS_ACTIONS=0
turns it off whatever the file says, and it runs only on the Rasa version it was tested on (as the speed-ups do).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Dict, FrozenSet, List, Optional, Text

logger = logging.getLogger(__name__)

ENDPOINT_KEY = "in_process_actions"
_INSTALLED_FLAG = "_kesar_lane_in_process_actions"


def configured_names(endpoint: Any) -> FrozenSet[str]:
    """The action names the endpoint config lists under `in_process_actions` (none without the key)."""
    if endpoint is None:
        return frozenset()
    names = (getattr(endpoint, "kwargs", None) or {}).get(ENDPOINT_KEY) or []
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",")]
    return frozenset(str(name).strip() for name in names if str(name).strip())


class InProcessRunner:
    """rasa-sdk's executor over this project's `actions` package, loaded once per process."""

    def __init__(self, package: str = "actions") -> None:
        from rasa_sdk.executor import ActionExecutor

        self.executor = ActionExecutor()
        self.executor.register_package(package)

    def knows(self, name: str) -> bool:
        return name in self.executor.actions

    async def run(self, action_call: Dict[Text, Any]) -> Dict[Text, Any]:
        """The action server's answer to `action_call`, computed here and passed through JSON once."""
        from actions.in_process import ACTIVE

        token = ACTIVE.set(True)
        try:
            answer = await self.executor.run(action_call)
        finally:
            ACTIVE.reset(token)
        return json.loads(json.dumps(answer or {"events": [], "responses": []}))


class Loader:
    """Loads the runner once. Rasa waits for it while it starts (in a thread: the event loop stays free), so the
    first message finds the actions ready; with the knowledge base's fit cached (actions/kb_fit_cache.py) that is a
    few seconds. A load that fails leaves every action on the action server, with one ERROR line."""

    def __init__(self, package: str = "actions") -> None:
        self.package = package
        self.runner: Optional[InProcessRunner] = None
        self.error: Optional[str] = None
        self._lock = threading.Lock()

    def load(self, names: FrozenSet[str]) -> Optional[InProcessRunner]:
        with self._lock:
            if self.runner is None:
                self._load(names)
            return self.runner

    def _load(self, names: FrozenSet[str]) -> None:
        try:
            loaded = InProcessRunner(self.package)
            missing = sorted(name for name in names if not loaded.knows(name))
            if missing:
                raise ValueError(f"the actions package defines no {', '.join(missing)}")
        except (Exception, SystemExit) as error:  # noqa: BLE001 - rasa-sdk exits on an import error; Rasa must not
            self.error = f"{type(error).__name__}: {error}"
            logger.error("In-process actions not loaded (%s); every action runs on the action server", self.error)
            return
        self.runner, self.error = loaded, None
        logger.info("Custom actions run in the Rasa process: %s (the others on the action server)",
                    ", ".join(sorted(names)))


LOADER = Loader()


def check_names(names: FrozenSet[str], domain: Any) -> None:
    """A name the domain does not list as a custom action stops the start with a clear error (it would otherwise
    be ignored unnoticed)."""
    known = set(getattr(domain, "user_actions", None) or ())
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"action_endpoint.{ENDPOINT_KEY} names {', '.join(unknown)}, which is not a custom action "
                         f"of the domain (custom actions: {', '.join(sorted(known)) or 'none'})")


def install() -> None:
    """Makes RemoteAction run the endpoint's `in_process_actions` here; every other action as before. They load
    right after Rasa has loaded its model, before it serves (LOADER)."""
    import rasa.core.agent as rasa_agent
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core import events as rasa_events

    if getattr(RemoteAction, _INSTALLED_FLAG, False):
        return
    remote_run = RemoteAction.run
    load_agent = rasa_agent.load_agent

    async def load_agent_and_actions(*args: Any, **kwargs: Any) -> Any:
        agent = await load_agent(*args, **kwargs)
        names = configured_names(getattr(agent, "action_endpoint", None))
        if names and getattr(agent, "domain", None) is not None:
            check_names(names, agent.domain)
            await asyncio.get_running_loop().run_in_executor(None, LOADER.load, names)
        return agent

    async def run(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Any]:
        loaded = LOADER.runner
        if loaded is None or self.name() not in configured_names(self.action_endpoint):
            return await remote_run(self, output_channel, nlg, tracker, domain)
        from actions.in_process import NeedsActionServer

        try:
            answer = await loaded.run(self._action_call_format(tracker, domain))
        except NeedsActionServer:
            return await remote_run(self, output_channel, nlg, tracker, domain)
        except Exception as error:  # noqa: BLE001 - the action server is the fallback for anything here
            logger.warning("In-process action %s failed (%s); running it on the action server",
                           self.name(), type(error).__name__)
            return await remote_run(self, output_channel, nlg, tracker, domain)
        self._validate_action_result(answer)
        bot_messages = await self._utter_responses(answer.get("responses", []), output_channel, nlg, tracker)
        return list(bot_messages) + rasa_events.deserialise_events(answer.get("events", []))

    RemoteAction.run = run
    rasa_agent.load_agent = load_agent_and_actions
    setattr(RemoteAction, _INSTALLED_FLAG, True)
