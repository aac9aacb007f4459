"""Pure pieces: payload parsing, text splitting, settings, signatures, store claiming rules."""

from __future__ import annotations

import json
import threading
import time

import pytest

from connectors.inbound import InboundAction, PayloadError, neutralise_intent_prefix, parse_webhook
from connectors.settings import InvalidSettingError, MissingSettingError, WhatsAppSettings
from connectors.signature import signature_is_valid
from connectors.store import StoreClosed, WhatsAppStore
from connectors.text_chunks import split_text
from connectors.whatsapp import WhatsAppInput
from tests.connector.support import SECRETS, change, encode, sign, text_message, webhook

# --- parsing -----------------------------------------------------------------------------


def test_parsing_reads_every_entry_change_message_and_status():
    statuses = [{"id": "wamid.out1", "status": "failed", "timestamp": "1", "recipient_id": "919800000001",
                 "errors": [{"code": 131047, "title": "Re-engagement message"}]}]
    payload = webhook(entries=[
        [change([text_message("919800000001", "a"), text_message("919800000001", "b")]), change(statuses=statuses)],
        [change([text_message("919800000002", "c")]), {"field": "message_template_status_update", "value": {}}],
    ])
    parsed = parse_webhook(encode(payload))
    assert [(m.message.wa_id, m.message.text) for m in parsed.messages] == [
        ("919800000001", "a"), ("919800000001", "b"), ("919800000002", "c")]
    assert [(s.message_id, s.status, s.errors[0]["code"]) for s in parsed.statuses] == [("wamid.out1", "failed", 131047)]
    assert parsed.statuses[0].raw == statuses[0]
    assert [c["field"] for c in parsed.skipped_changes] == ["message_template_status_update"]
    assert parsed.rejected == []


def test_profile_name_is_matched_to_the_sender():
    first, second = text_message("919800000001", "hi"), text_message("919800000002", "hello")
    payload = webhook(change([first, second], names={"919800000001": "Priya", "919800000002": "Rohan"}))
    assert [m.message.profile_name for m in parse_webhook(encode(payload)).messages] == ["Priya", "Rohan"]


@pytest.mark.parametrize("message, action, text", [
    ({"type": "text", "text": {"body": "hi"}}, InboundAction.CONVERSE, "hi"),
    ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "/affirm", "title": "Yes"}}},
     InboundAction.CONVERSE, "/affirm"),
    ({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": "/size", "title": "M", "description": "Medium"}}},
     InboundAction.CONVERSE, "/size"),
    ({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}}},
     InboundAction.IGNORE, None),
    ({"type": "button", "button": {"payload": "/track_order", "text": "Track"}}, InboundAction.CONVERSE, "/track_order"),
    ({"type": "button", "button": {"text": "/Track it"}}, InboundAction.CONVERSE, "Track it"),
    ({"type": "image", "image": {"id": "1", "mime_type": "image/jpeg"}}, InboundAction.UNREADABLE, "[image]"),
    ({"type": "sticker", "sticker": {"id": "2", "mime_type": "image/webp", "animated": True}}, InboundAction.UNREADABLE, "[sticker]"),
    ({"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "\u2764\ufe0f"}}, InboundAction.REACTION, "\u2764\ufe0f"),
    ({"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": ""}}, InboundAction.IGNORE, None),  # removed
    ({"type": "reaction", "reaction": {"message_id": "wamid.x"}}, InboundAction.IGNORE, None),
    ({"type": "system", "system": {"body": "changed number"}}, InboundAction.IGNORE, None),
])
def test_each_message_type_maps_to_what_the_bot_does_with_it(message, action, text):
    raw = {"from": "919800000001", "id": "wamid.t", "timestamp": "1", **message}
    [received] = parse_webhook(encode(webhook(change([raw])))).messages
    assert (received.message.action, received.message.text) == (action, text)
    assert received.raw == raw


@pytest.mark.parametrize("broken", [
    {"from": "919800000001", "id": "wamid.t", "timestamp": "1", "type": "text"},  # no text object
    {"from": "919800000001", "id": "wamid.t", "timestamp": "1", "type": "image", "image": "not an object"},
    {"from": "919800000001", "id": "", "timestamp": "1", "type": "text", "text": {"body": "x"}},
    "just a string",
])
def test_a_broken_message_is_rejected_alone(broken):
    good = text_message("919800000001", "fine")
    parsed = parse_webhook(encode(webhook(change([broken, good]))))
    assert [m.message.text for m in parsed.messages] == ["fine"]
    assert len(parsed.rejected) == 1 and parsed.rejected[0].fragment == broken


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"null", b'{"object": "page", "entry": []}', b'{"entry": []}'])
def test_unreadable_bodies_raise_payload_error(body):
    with pytest.raises(PayloadError):
        parse_webhook(body)


def test_unknown_fields_are_ignored():
    payload = webhook(change([text_message("919800000001", "hi")]))
    payload["entry"][0]["changes"][0]["value"]["brand_new_field"] = {"x": 1}
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["user_id"] = "IN.123"
    assert [m.message.text for m in parse_webhook(encode(payload)).messages] == ["hi"]


@pytest.mark.parametrize("typed, expected", [
    ("/restart", "restart"), ("  //stop", "stop"), ("/ human", "human"), ("/", "/"), ("a/b", "a/b"), ("", ""),
])
def test_neutralise_intent_prefix(typed, expected):
    assert neutralise_intent_prefix(typed) == expected


def test_record_round_trip_keeps_everything():
    image = {"from": "919800000001", "id": "wamid.i", "timestamp": "1", "type": "image",
             "image": {"id": "9", "mime_type": "image/png", "caption": "bill"}}
    [received] = parse_webhook(encode(webhook(change([image])))).messages
    restored = type(received.message).from_record(json.loads(json.dumps(received.message.to_record())))
    assert restored == received.message
    assert restored.rasa_metadata()["whatsapp"]["media"] == {"id": "9", "mime_type": "image/png", "caption": "bill"}


def test_a_voice_note_is_marked_as_one_for_the_inbox():
    note = {"from": "919800000001", "id": "wamid.v", "timestamp": "1", "type": "audio",
            "audio": {"id": "7", "mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "voice": True}}
    [received] = parse_webhook(encode(webhook(change([note])))).messages
    assert received.message.text == "[audio]"
    assert received.message.rasa_metadata()["whatsapp"]["media"] == {
        "id": "7", "mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "voice": True}


# --- text splitting ----------------------------------------------------------------------


def test_short_text_is_one_piece():
    assert split_text("Namaste!") == ["Namaste!"]


def test_split_prefers_sentences_then_words_then_hard_cuts():
    sentences = "Aaaa aaa. Bbbb bbb. Cccc ccc."
    assert split_text(sentences, limit=20) == ["Aaaa aaa. Bbbb bbb.", "Cccc ccc."]
    assert split_text("alpha beta gamma delta", limit=11) == ["alpha beta", "gamma delta"]
    assert split_text("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_split_knows_the_devanagari_full_stop():
    text = "आपका ऑर्डर भेज दिया गया है। यह तीन दिन में पहुँचेगा।"
    assert split_text(text, limit=30) == ["आपका ऑर्डर भेज दिया गया है।", "यह तीन दिन में पहुँचेगा।"]


def test_split_does_not_leave_a_tiny_first_piece_for_a_paragraph_break():
    text = "Hi!\n\n" + "word " * 30
    pieces = split_text(text.strip(), limit=60)
    assert len(pieces[0]) > 30 and all(len(piece) <= 60 for piece in pieces)


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", list(SECRETS))
def test_each_missing_setting_is_named_at_start_up(monkeypatch, missing):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    with pytest.raises(MissingSettingError, match=missing):
        WhatsAppInput.from_credentials(None)


def test_inbox_url_without_bot_token_is_refused():
    with pytest.raises(MissingSettingError, match="INBOX_BOT_TOKEN"):
        WhatsAppSettings.from_env({**SECRETS, "INBOX_URL": "http://127.0.0.1:8080"})


@pytest.mark.parametrize("name, value", [
    ("WHATSAPP_API_BASE_URL", "graph.facebook.com/v21.0"),
    ("WHATSAPP_SEND_ATTEMPTS", "0"),
    ("WHATSAPP_SEND_BACKOFF_SECONDS", "soon"),
])
def test_invalid_settings_are_named(name, value):
    with pytest.raises(InvalidSettingError, match=name):
        WhatsAppSettings.from_env({**SECRETS, name: value})


def test_defaults_point_at_the_graph_api():
    settings = WhatsAppSettings.from_env(SECRETS)
    assert settings.messages_url == f"https://graph.facebook.com/v21.0/{SECRETS['WHATSAPP_PHONE_NUMBER_ID']}/messages"
    assert settings.store_url == "sqlite:///var/whatsapp.db"


# --- signature ---------------------------------------------------------------------------


def test_signature_check():
    body = b'{"a": 1}'
    assert signature_is_valid("secret", body, sign(body, "secret"))
    assert signature_is_valid("secret", body, sign(body, "secret").upper().replace("SHA256=", "sha256="))
    assert not signature_is_valid("secret", body + b" ", sign(body, "secret"))
    assert not signature_is_valid("secret", body, None)
    assert not signature_is_valid("secret", body, "sha256=\u00e9" * 3)


# --- store: claiming, ordering, duplicates ------------------------------------------------


@pytest.fixture
def store(store_url):
    store = WhatsAppStore(store_url)
    store.create_schema()
    yield store
    store.close()


def persist(store: WhatsAppStore, *messages: dict):
    parsed = parse_webhook(encode(webhook(change(list(messages)))))
    return store.persist_webhook(parsed.messages, parsed.statuses, parsed.rejected, forward_statuses=False)


def test_only_the_oldest_unfinished_message_of_a_customer_can_be_claimed(store):
    persist(store, text_message("919800000001", "one"), text_message("919800000001", "two"),
            text_message("919800000002", "other customer"))
    first = store.claim_next("919800000001", "process-a", lease_seconds=30)
    assert first.message.text == "one"
    # another process gets nothing for this customer while "one" is in hand, but other customers go on
    assert store.claim_next("919800000001", "process-b", lease_seconds=30) is None
    assert store.claim_next("919800000002", "process-b", lease_seconds=30).message.text == "other customer"
    store.finish(first.seq, "process-a")
    assert store.claim_next("919800000001", "process-b", lease_seconds=30).message.text == "two"


def test_a_claim_that_runs_out_is_taken_over(store):
    persist(store, text_message("919800000001", "one"))
    claimed = store.claim_next("919800000001", "crashed-process", lease_seconds=0.2)
    assert store.claim_next("919800000001", "survivor", lease_seconds=30) is None
    time.sleep(0.3)
    taken = store.claim_next("919800000001", "survivor", lease_seconds=30)
    assert taken.seq == claimed.seq and taken.attempts == 2
    assert not store.finish(claimed.seq, "crashed-process")  # the old owner can no longer finish it
    assert store.finish(taken.seq, "survivor")


def test_renewed_claims_are_not_taken_over(store):
    persist(store, text_message("919800000001", "one"))
    store.claim_next("919800000001", "alive", lease_seconds=0.3)
    for _ in range(3):
        time.sleep(0.15)
        store.renew_claims("alive", lease_seconds=0.3)
        assert store.claim_next("919800000001", "other", lease_seconds=30) is None


def test_statuses_are_kept_once_and_forwarded_in_arrival_order(store):
    def status(message_id, name):
        return {"id": message_id, "status": name, "timestamp": "1", "recipient_id": "919800000001"}

    first = [status("wamid.out1", "sent"), status("wamid.out1", "delivered")]
    parsed = parse_webhook(encode(webhook(change(statuses=first))))
    assert store.persist_webhook([], parsed.statuses, [], forward_statuses=True).new_statuses == 2
    again = parse_webhook(encode(webhook(change(statuses=[status("wamid.out1", "delivered"), status("wamid.out1", "read")]))))
    assert store.persist_webhook([], again.statuses, [], forward_statuses=True).new_statuses == 1  # Meta repeats itself

    due = store.statuses_due()
    assert [(s.raw["id"], s.raw["status"]) for s in due] == [
        ("wamid.out1", "sent"), ("wamid.out1", "delivered"), ("wamid.out1", "read")]
    store.postpone_forwarding([due[0].id], delay_seconds=60)
    store.mark_forwarded([s.id for s in due[1:]])
    assert store.statuses_due() == []
    assert store.next_forward_time() > time.time() + 30


def test_reply_options_and_dead_letters_round_trip(store):
    payload = '/inform{"size": "M"}'
    key = store.remember_reply_option(payload)
    assert store.remember_reply_option(payload) == key  # the same option twice is one row
    assert store.resolve_reply_option(key) == payload
    assert store.resolve_reply_option(key[:-1] + "x") is None
    assert store.add_dead_letter("not JSON", b"\xff{") > 0
    store.record_outbound(recipient_id="919800000001", kind="text", request={"text": {"body": "hi"}},
                          wamid="wamid.out9", http_status=200, error_code=None, error_title=None, attempts=1)


def test_a_reaction_may_only_be_to_a_message_the_bot_sent_to_that_customer(store):
    store.record_outbound(recipient_id="919800000001", kind="text", request={"text": {"body": "answer"}},
                          wamid="wamid.answer", http_status=200, error_code=None, error_title=None, attempts=1)
    store.record_outbound(recipient_id="919800000001", kind="text", request={"text": {"body": "lost"}},
                          wamid=None, http_status=500, error_code=1, error_title="down", attempts=5)
    assert store.sent_to("wamid.answer", "919800000001")
    assert not store.sent_to("wamid.answer", "919800000002")  # someone else's message
    assert not store.sent_to("wamid.customer-own", "919800000001")  # e.g. the customer's own message


def test_concurrent_duplicate_persists_keep_one_copy(store_url):
    stores = [WhatsAppStore(store_url) for _ in range(4)]  # like four server processes
    stores[0].create_schema()
    message = text_message("919800000001", "same message")
    results = []

    def deliver(store: WhatsAppStore) -> None:
        results.append(len(persist(store, message).new_messages))

    threads = [threading.Thread(target=deliver, args=(store,)) for store in stores for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0] * 11 + [1]
    for store in stores:
        store.close()


def test_several_processes_starting_on_a_fresh_database_all_get_a_working_store(store_url):
    # Sanic workers (SANIC_WORKERS > 1) start at the same moment and each prepares the store.
    stores = [WhatsAppStore(store_url) for _ in range(6)]
    start_together = threading.Barrier(len(stores))
    errors = []

    def prepare(store: WhatsAppStore) -> None:
        start_together.wait()
        try:
            store.create_schema()
        except Exception as error:  # noqa: BLE001 - the test reports whatever a worker would crash on
            errors.append(error)

    threads = [threading.Thread(target=prepare, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(persist(stores[-1], text_message("919800000001", "hello")).new_messages) == 1
    for store in stores:
        store.close()


def test_customers_with_work_lists_pending_and_abandoned_customers(store):
    persist(store, text_message("919800000001", "pending"), text_message("919800000002", "abandoned"),
            text_message("919800000003", "in hand"))
    store.claim_next("919800000002", "dead", lease_seconds=0.1)
    store.claim_next("919800000003", "alive", lease_seconds=30)
    time.sleep(0.2)
    assert sorted(store.customers_with_work()) == ["919800000001", "919800000002"]


async def test_a_closed_store_refuses_work_with_a_clear_error(store):
    store.close()
    with pytest.raises(StoreClosed, match="shutting down"):
        await store.run(persist, store, text_message("919800000001", "too late"))
