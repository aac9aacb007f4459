"""Entities that actions read from the message never decide which rule runs.

Session 45 (v48): "hold on, let me grab a measuring tape and check again" carried the marketing opt-in word "again"
(nlp/entity_patterns.yml) beside the `still_looking` entity. While opt_in influenced the conversation, the rule "still
looking, with no form waiting" (data/rules/orders.yml, which names only `still_looking`) no longer matched, and the
order form asked for a number nobody had mentioned. domain.yml now keeps size, opt_in and opt_out out of the
conversation's state; actions/consent.py still reads them from the message. Runs the trained model in-process with the
real action server, as a customer would meet it.
"""
from __future__ import annotations

import uuid

import pytest
import pytest_asyncio
from rasa.utils.endpoints import EndpointConfig

from tests.integration.conftest import load_agent, say

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent(action_server_url):
    return load_agent(action_endpoint=EndpointConfig(url=action_server_url))


@pytest.mark.parametrize("looking", [
    "hold on, let me grab a measuring tape and check again",   # "again": an opt-in word
    "one sec, let me check my email",                          # no other entity
])
async def test_still_looking_after_an_answer_is_take_your_time_whatever_other_words_it_has(agent, looking):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    answer = await say(agent, sender, "what size should i pick for a 40 inch chest?")
    assert answer and "size chart" in answer[0].lower()
    reply = await say(agent, sender, looking)
    assert reply == ["Sure, take your time."]   # and not the form's "what's your order number?"


async def test_stop_and_start_still_change_the_marketing_consent(agent):
    sender = f"it-{uuid.uuid4().hex[:8]}"
    [stopped] = await say(agent, sender, "STOP")
    assert "won't get offers" in stopped
    [started] = await say(agent, sender, "START")
    assert started.startswith("Welcome back")
