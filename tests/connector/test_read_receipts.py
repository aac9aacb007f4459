"""Blue ticks and "typing…" for the bot's turns (connectors/read_receipts.py): the Graph API calls,
when they are made, and what the customer's phone (the sandbox) shows. Time is injected in the unit
tests; the sandbox tests wait on conditions."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any, Dict, List

import requests

from connectors.graph_api import MetaError, SendResult
from connectors.read_receipts import NoReadReceipts, ReadReceipts
from tests.connector.support import SandboxClient, new_wa_id, wait_until

WAMID = "wamid.customer1"


class FakeGraph:
    def __init__(self, status: int = 200) -> None:
        self.bodies: List[Dict[str, Any]] = []
        self.status = status

    async def send(self, payload: Dict[str, Any]) -> SendResult:
        self.bodies.append(payload)
        error = None if self.status == 200 else MetaError(100, "Invalid parameter")
        return SendResult(wamid=None, http_status=self.status, error=error, attempts=1)


class Moment:
    """The injected sleep: "a moment has passed" only when the test says so."""

    def __init__(self) -> None:
        self.passed = asyncio.Event()

    async def sleep(self, _seconds: float) -> None:
        await self.passed.wait()


async def not_handed_off(_sender_id: str) -> bool:
    return False


async def handed_off(_sender_id: str) -> bool:
    return True


async def test_a_quick_answer_marks_the_message_read_without_typing():
    graph, moment = FakeGraph(), Moment()
    receipts = ReadReceipts(graph, not_handed_off, sleep=moment.sleep)
    channel = SimpleNamespace(messages_sent=0)
    async with receipts.while_answering(WAMID, "919800000001", channel):
        channel.messages_sent = 1  # the bot answered before a moment passed
    await receipts.settle()
    assert graph.bodies == [{"messaging_product": "whatsapp", "status": "read", "message_id": WAMID}]


async def test_a_slow_answer_shows_typing_first_and_is_not_marked_twice():
    graph, moment = FakeGraph(), Moment()
    receipts = ReadReceipts(graph, not_handed_off, sleep=moment.sleep)
    channel = SimpleNamespace(messages_sent=0)
    async with receipts.while_answering(WAMID, "919800000001", channel):
        moment.passed.set()
        while not graph.bodies:  # the typing call goes out while the bot still thinks
            await asyncio.sleep(0)
        channel.messages_sent = 1
    await receipts.settle()
    assert graph.bodies == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID, "typing_indicator": {"type": "text"}}
    ]


async def test_a_conversation_a_person_has_is_left_unread_for_the_inbox():
    graph, moment = FakeGraph(), Moment()
    receipts = ReadReceipts(graph, handed_off, sleep=moment.sleep)
    channel = SimpleNamespace(messages_sent=0)
    async with receipts.while_answering(WAMID, "919800000001", channel):
        moment.passed.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await receipts.settle()
    assert graph.bodies == []  # the bot said nothing and a person has it: the team's setting decides


async def test_a_refused_read_is_logged_once_and_never_fails_the_turn(caplog):
    graph = FakeGraph(status=400)
    receipts = ReadReceipts(graph, not_handed_off, sleep=Moment().sleep)
    channel = SimpleNamespace(messages_sent=0)
    with caplog.at_level(logging.WARNING, logger="connectors.read_receipts"):
        async with receipts.while_answering(WAMID, "919800000001", channel):
            channel.messages_sent = 2
        await receipts.settle()
    assert len(graph.bodies) == 1
    [line] = [record.getMessage() for record in caplog.records]
    assert "did not mark message wamid.customer1" in line and "code 100" in line and "919800000001" not in line


def test_read_receipts_can_be_switched_off_and_the_moment_tuned():
    graph = FakeGraph()
    assert type(ReadReceipts.from_env(graph, not_handed_off, {"WHATSAPP_READ_RECEIPTS": "off"})) is NoReadReceipts
    tuned = ReadReceipts.from_env(graph, not_handed_off, {"WHATSAPP_TYPING_AFTER_SECONDS": "2.5"})
    assert isinstance(tuned, ReadReceipts) and tuned._typing_after == 2.5


# --- against the sandbox (the customer's phone) -------------------------------------------------


def presence(sandbox: SandboxClient, wa_id: str) -> Dict[str, Any]:
    return requests.get(f"{sandbox.api}/customers/{wa_id}/presence", timeout=5).json()


def test_the_customer_sees_blue_ticks_once_the_bot_answers(sandbox):
    wa_id = new_wa_id()
    message_id = sandbox.customer_says(wa_id, text="hello")["message_id"]
    sandbox.wait_for_business(wa_id)
    assert wait_until(lambda: presence(sandbox, wa_id)["statuses"].get(message_id) == "read")


def test_the_customer_sees_typing_while_a_slow_answer_is_prepared(sandbox):
    wa_id = new_wa_id()
    message_id = sandbox.customer_says(wa_id, text="slow 5")["message_id"]  # the test host answers after 5 s
    assert wait_until(lambda: presence(sandbox, wa_id)["typing"])
    assert presence(sandbox, wa_id)["statuses"][message_id] == "read"
    sandbox.wait_for_business(wa_id)
    assert wait_until(lambda: not presence(sandbox, wa_id)["typing"])  # the answer ends "typing…"


def test_a_bot_reply_that_lands_outside_the_window_fails_once_with_131047_and_is_not_retried(sandbox, host):
    wa_id = new_wa_id()
    sandbox.customer_says(wa_id, text="slow 3")  # the test host answers after 3 s…
    close_window = {"seconds_ago": 25 * 3600}  # …by when the customer's window has closed
    requests.post(f"{sandbox.api}/customers/{wa_id}/last_message", json=close_window, timeout=5).raise_for_status()
    attempts = sandbox.send_attempts()
    [reply] = sandbox.wait_for_business(wa_id)
    assert reply["content"]["text"]["body"] == "echo: slow 3"
    rows = wait_until(lambda: [row for row in host.store.statuses(reply["id"]) if row["status"] == "failed"])
    assert "131047" in str(dict(rows[0]))  # Meta's code, kept with the status
    assert sandbox.send_attempts() - attempts == 1  # accepted once, failed later: never sent again
    assert len(sandbox.business_messages(wa_id)) == 1
