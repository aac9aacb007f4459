"""Custom actions run inside the Rasa process (connectors/in_process_actions.py) answer exactly as the action
server does: the same replies and the same events, turn after turn; a knowledge-base question that ends in a
hand-off, a failure inside the process and a start before the actions have loaded all go to the action server.

Two agents of the trained model in-process, one calling the real action server for every action, one with
`in_process_actions` on its endpoint; each conversation is played to both under different customer ids.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Dict, List, Tuple

import pytest
import pytest_asyncio
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import ActionExecuted, ConversationPaused, SlotSet
from rasa.utils.endpoints import EndpointConfig

from connectors import in_process_actions
from tests.integration.conftest import load_agent

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

NAMES = ["action_answer_question", "action_session_start"]

# Written for this test (not copied from the NLU data or any conversation set): questions the knowledge base
# answers, follow-ups that lean on the answer before, chit-chat, and the order form around them.
CONVERSATIONS: List[List[str]] = [
    ["hi", "how many days do i get to send back a kurta", "and the money comes back to upi?", "ok thanks"],
    ["is cash on delivery there for pune", "any extra fee for that?", "👍"],
    ["do the face serums suit oily skin", "how long will one bottle last once opened", "great, bye"],
    ["where is my parcel", "it's 48213", "thank you"],
    ["kitne din mein deliver hoga bangalore", "express bhi hai kya?", "theek hai"],
]
# On-brand, but no entry covers it: the knowledge-base action hands off, which is the action server's job.
NO_ENTRY = "can your tailor add a lining to a lehenga i bought elsewhere"


def customer() -> str:
    return f"91{uuid.uuid4().int % 10**10:010d}"


def metadata(sender: str, number: int) -> Dict[str, Any]:
    return {"whatsapp": {"wa_id": sender, "user_id": None, "username": None, "profile_name": "Meera",
                         "phone_number_id": "1234", "message_id": f"wamid.{sender}.{number}", "type": "text",
                         "timestamp": str(1764730000 + number)}}


def comparable(events) -> List[Tuple[Any, ...]]:
    """The events without what differs by nature between two customers and two runs (timestamps, ids)."""
    out = []
    for event in events:
        data = event.as_dict()
        data.pop("timestamp", None)
        if data.get("event") == "user":
            data = {"event": "user", "text": data.get("text"), "intent": (data.get("parse_data") or {}).get("intent", {}).get("name")}
        if data.get("event") == "slot" and data.get("name") == "session_started_metadata":
            continue
        if data.get("event") == "slot" and data.get("name") in ("handoff_id", "handoff_details"):
            data["value"] = "<per customer>"
        out.append(repr(sorted(data.items(), key=lambda item: item[0])))
    return out


async def play(agent, sender: str, texts: List[str]) -> Tuple[List[List[str]], List[Any]]:
    replies = []
    for number, text in enumerate(texts):
        answer = await agent.handle_message(UserMessage(text, sender_id=sender, metadata=metadata(sender, number)))
        replies.append([m.get("text") for m in answer or []])
    tracker = await agent.tracker_store.retrieve(sender)
    return replies, list(tracker.events)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agents(action_server_url):
    in_process_actions.install()
    remote = load_agent(action_endpoint=EndpointConfig(url=action_server_url))
    local = load_agent(action_endpoint=EndpointConfig(url=action_server_url, in_process_actions=NAMES))
    in_process_actions.check_names(frozenset(NAMES), local.domain)
    assert in_process_actions.LOADER.load(frozenset(NAMES)) is not None, in_process_actions.LOADER.error
    return remote, local


@pytest.fixture
def calls(monkeypatch):
    """How each in-process call ended: 'answered', or the exception's name."""
    outcomes: List[str] = []
    runner = in_process_actions.LOADER.runner
    original = runner.run

    async def counted(action_call):
        try:
            answer = await original(action_call)
        except Exception as error:
            outcomes.append(f"{action_call['next_action']}: {type(error).__name__}")
            raise
        outcomes.append(f"{action_call['next_action']}: answered")
        return answer

    monkeypatch.setattr(runner, "run", counted)
    return outcomes


@pytest.mark.parametrize("texts", CONVERSATIONS, ids=[c[1][:30] for c in CONVERSATIONS])
async def test_in_process_actions_answer_as_the_action_server_does(agents, calls, texts):
    remote, local = agents
    remote_replies, remote_events = await play(remote, customer(), texts)
    local_replies, local_events = await play(local, customer(), texts)
    assert local_replies == remote_replies
    assert comparable(local_events) == comparable(remote_events)
    # every session start and knowledge-base question really started here; each answer was given here, and each
    # hand-off (no entry scored high enough) was stopped here and run on the action server
    assert "action_session_start: answered" in calls
    asked = [e for e in local_events if isinstance(e, ActionExecuted) and e.action_name == "action_answer_question"]
    answered = [e for e in local_events if isinstance(e, SlotSet) and e.key == "kb_match" and e.value["answered"]]
    assert len([c for c in calls if c.startswith("action_answer_question")]) == len(asked)
    assert calls.count("action_answer_question: answered") == len(answered)


async def test_a_question_no_entry_covers_is_handed_off_by_the_action_server(agents, calls):
    remote, local = agents
    remote_replies, remote_events = await play(remote, customer(), [NO_ENTRY])
    local_replies, local_events = await play(local, customer(), [NO_ENTRY])
    assert local_replies == remote_replies
    assert any(isinstance(e, ConversationPaused) for e in local_events)
    assert comparable(local_events) == comparable(remote_events)
    assert "action_answer_question: NeedsActionServer" in calls  # started here, stopped before the inbox


async def test_an_action_that_fails_in_process_runs_on_the_action_server(agents, monkeypatch, caplog):
    _remote, local = agents

    async def broken(action_call):
        raise RuntimeError("disk full: what is your return policy")

    monkeypatch.setattr(in_process_actions.LOADER.runner, "run", broken)
    with caplog.at_level(logging.WARNING, logger="connectors.in_process_actions"):
        replies, events = await play(local, customer(), ["what is your return policy"])
    assert replies[0] and "return" in " ".join(replies[0]).lower()
    assert any(isinstance(e, SlotSet) and e.key == "kb_match" and e.value["answered"] for e in events)
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == ["In-process action action_session_start failed (RuntimeError); running it on the action server",
                       "In-process action action_answer_question failed (RuntimeError); running it on the action server"]
    assert "return policy" not in " ".join(warning)  # nothing the customer wrote


async def test_when_the_actions_could_not_load_every_action_runs_on_the_action_server(agents, monkeypatch):
    remote, local = agents
    monkeypatch.setattr(in_process_actions.LOADER, "runner", None)
    remote_replies, remote_events = await play(remote, customer(), CONVERSATIONS[0])
    local_replies, local_events = await play(local, customer(), CONVERSATIONS[0])
    assert local_replies == remote_replies
    assert comparable(local_events) == comparable(remote_events)


async def test_a_name_that_is_no_custom_action_stops_the_start(agents):
    _remote, local = agents
    with pytest.raises(ValueError, match="action_answer_questions, which is not a custom action of the domain"):
        in_process_actions.check_names(frozenset(["action_answer_questions"]), local.domain)


async def test_the_names_come_from_the_endpoint_config():
    assert in_process_actions.configured_names(None) == frozenset()
    assert in_process_actions.configured_names(EndpointConfig(url="http://x")) == frozenset()
    assert in_process_actions.configured_names(
        EndpointConfig(url="http://x", in_process_actions=["action_a", " action_b "])) == {"action_a", "action_b"}
    assert in_process_actions.configured_names(
        EndpointConfig(url="http://x", in_process_actions="action_a, action_b")) == {"action_a", "action_b"}


async def test_a_package_that_cannot_load_leaves_every_action_on_the_action_server(caplog):
    loader = in_process_actions.Loader(package="actions_that_do_not_exist")
    with caplog.at_level(logging.ERROR, logger="connectors.in_process_actions"):
        assert loader.load(frozenset(NAMES)) is None
    assert loader.runner is None and loader.error
    assert any("every action runs on the action server" in r.getMessage() for r in caplog.records)
