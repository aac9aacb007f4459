"""The connector inside a real `rasa run`, with the sandbox as Meta and the action server (the session's
`rasa` fixture, tests/connector/rasa_server.py)."""

from __future__ import annotations

import requests

from tests.connector.rasa_server import RASA_TOKEN
from tests.connector.support import PHONE_NUMBER_ID, new_wa_id, wait_until

UNREADABLE_REPLY_START = "Thanks! I can only read text for now"
CONTRACT_KEYS = {"wa_id", "user_id", "username", "profile_name", "phone_number_id", "message_id", "type", "timestamp"}


def test_a_customer_message_is_answered_and_carries_whatsapp_metadata(rasa):
    wa_id = new_wa_id()
    sent = rasa.sandbox.customer_says(wa_id, text="hi", profile_name="Priya Sharma")
    assert sent["webhook_status"] == 200
    replies = rasa.sandbox.wait_for_business(wa_id, timeout=30)
    assert replies, "no reply reached the sandbox"
    [user_event] = [event for event in rasa.saved_tracker(wa_id) if event["event"] == "user"]
    whatsapp = user_event["metadata"]["whatsapp"]
    assert set(whatsapp) == CONTRACT_KEYS
    assert (whatsapp["wa_id"], whatsapp["profile_name"], whatsapp["phone_number_id"], whatsapp["message_id"]) == (
        wa_id, "Priya Sharma", PHONE_NUMBER_ID, sent["message_id"])
    # Meta sends every customer's business-scoped user id (the sandbox makes one per number).
    assert whatsapp["user_id"] == sent["customer"]["user_id"] and whatsapp["username"] is None
    assert user_event["input_channel"] == "whatsapp" and user_event["message_id"] == sent["message_id"]


def test_an_image_is_recorded_and_answered_politely_without_a_prediction(rasa):
    wa_id = new_wa_id()
    rasa.sandbox.customer_says(wa_id, media={"type": "image", "caption": "torn kurta", "mime_type": "image/jpeg"})
    [reply] = rasa.sandbox.wait_for_business(wa_id, timeout=30)
    assert reply["content"]["text"]["body"].startswith(UNREADABLE_REPLY_START)

    events = rasa.saved_tracker(wa_id)
    user_index = next(i for i, e in enumerate(events) if e["event"] == "user")
    user_event = events[user_index]
    assert user_event["text"] == "[image] torn kurta"
    media = user_event["metadata"]["whatsapp"]["media"]
    assert media["caption"] == "torn kurta" and media["mime_type"] == "image/jpeg" and media["id"]
    after = events[user_index + 1:]
    assert [e["event"] for e in after] == ["bot"]  # no action was predicted or run
    assert after[0]["text"].startswith(UNREADABLE_REPLY_START)


def test_a_handed_off_conversation_stays_silent_even_for_slash_commands(rasa):
    wa_id = new_wa_id()
    rasa.sandbox.customer_says(wa_id, text="hi")
    rasa.sandbox.wait_for_business(wa_id, timeout=30)
    answered = len(rasa.sandbox.business_messages(wa_id))
    requests.post(f"{rasa.url}/conversations/{wa_id}/tracker/events", params={"token": RASA_TOKEN},
                  json=[{"event": "pause"}], timeout=10).raise_for_status()

    rasa.sandbox.customer_says(wa_id, media={"type": "image", "caption": "see"})
    rasa.sandbox.customer_says(wa_id, text="/restart")
    assert wait_until(lambda: [e["text"] for e in rasa.user_events(wa_id)][-2:] == ["[image] see", "restart"], timeout=30)
    # Rasa saves a turn's tracker after its actions ran, so once both messages are in the saved tracker a
    # reply would be there too: nothing after the last user event means nothing was predicted or sent.
    assert rasa.tracker_events(wa_id)[-1]["event"] == "user"
    assert len(rasa.sandbox.business_messages(wa_id)) == answered


def test_rasa_http_api_can_send_proactively_on_whatsapp(rasa):
    """`trigger_intent?output_channel=whatsapp` (e.g. a follow-up) reaches the customer."""
    wa_id = new_wa_id()
    rasa.sandbox.customer_says(wa_id, text="hi")
    answered = len(rasa.sandbox.wait_for_business(wa_id, timeout=30))
    domain = requests.get(f"{rasa.url}/domain", params={"token": RASA_TOKEN}, headers={"Accept": "application/json"},
                          timeout=10).json()
    intents = [next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]]
    answer = requests.post(f"{rasa.url}/conversations/{wa_id}/trigger_intent",
                           params={"token": RASA_TOKEN, "output_channel": "whatsapp"},
                           json={"name": "greet" if "greet" in intents else intents[0]}, timeout=30)
    assert answer.status_code == 200
    assert "messages" not in answer.json()  # sent on WhatsApp, not collected into the response
    assert len(rasa.sandbox.wait_for_business(wa_id, at_least=answered + 1, timeout=30)) > answered


def test_stop_and_start_from_whatsapp_switch_marketing_consent(rasa):
    """STOP is plain text on WhatsApp; the bot records the opt-out (actions/CONTRACT.md) and says so."""
    wa_id = new_wa_id()

    def consent() -> Any:
        tracker = requests.get(f"{rasa.url}/conversations/{wa_id}/tracker", params={"token": RASA_TOKEN}, timeout=10).json()
        return tracker["slots"].get("marketing_opt_in")

    rasa.sandbox.customer_says(wa_id, text="STOP")
    rasa.sandbox.wait_for_business(wa_id, timeout=30)
    assert wait_until(lambda: consent() is False, timeout=10)
    replies = len(rasa.sandbox.business_messages(wa_id))
    rasa.sandbox.customer_says(wa_id, text="START")
    rasa.sandbox.wait_for_business(wa_id, at_least=replies + 1, timeout=30)
    assert wait_until(lambda: consent() is True, timeout=10)
