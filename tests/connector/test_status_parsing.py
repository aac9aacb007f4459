"""The plain path of `connectors/inbound.py` (issue 16: CPU per message): status webhooks read without
pydantic's passes, with the same result as the models on every payload.

- A Meta-shaped status webhook (the sandbox's shape: conversation, pricing, callback data, contacts with
  a username) is read without any model: fails before the plain path (every level was a model).
- Hundreds of mutations of a status webhook and of a message webhook (every field deleted, null, a
  number, a string, a list, an object, true, empty; extra fields; several entries and changes) give the
  same ParsedWebhook, or the same PayloadError, through the plain path and through the models alone.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Iterator, List, Tuple

import pytest

import connectors.inbound as inbound
from connectors.inbound import PayloadError, parse_webhook
from tests.connector.support import change, encode, text_message, webhook

CUSTOMER = "919812345678"
BSUID = "IN.13491208655302741918"


def status_object(status: str = "delivered", **extra: Any) -> dict:
    return {
        "id": "wamid.HBgMOTE5ODEyMzQ1Njc4FQIAERgSQTdCOTk0NkU1QjM0RjVGMTE4AA==", "status": status,
        "timestamp": "1764719999", "recipient_id": CUSTOMER, "recipient_user_id": BSUID,
        "conversation": {"id": hashlib.md5(b"c").hexdigest(), "origin": {"type": "service"}},
        "pricing": {"billable": False, "pricing_model": "PMP", "category": "service"},
        "biz_opaque_callback_data": "wamid.IN1:0", **extra,
    }


def status_webhook(*statuses: dict) -> dict:
    value_change = change(statuses=list(statuses))
    value_change["value"]["contacts"] = [{"user_id": BSUID, "wa_id": CUSTOMER, "profile": {"username": "asha"}}]
    return webhook(value_change)


def failed_status() -> dict:
    return status_object("failed", errors=[{"code": 131047, "title": "Re-engagement message",
                                            "error_data": {"details": "more than 24 hours"}}])


def message_webhook() -> dict:
    return webhook(change([text_message(CUSTOMER, "where is my order", "wamid.M1")]))


def outcome(body: bytes) -> Any:
    """What parse_webhook answers, as comparable values."""
    try:
        parsed = parse_webhook(body)
    except PayloadError as error:
        return ("PayloadError", str(error))
    except RecursionError:
        return ("RecursionError",)
    return (
        [(item.message, item.raw) for item in parsed.messages],
        parsed.statuses,
        [(item.reason, json.dumps(item.fragment, sort_keys=True)) for item in parsed.rejected],
        parsed.meta_errors,
        parsed.skipped_changes,
    )


@pytest.fixture
def models_only(monkeypatch):
    """Switches the plain path off: every level goes through its pydantic model, as before."""

    def switch_off() -> None:
        for name in ("_plain_envelope", "_plain_change", "_plain_status_value", "_plain_status"):
            monkeypatch.setattr(inbound, name, lambda *_args: None)

    return switch_off


def test_a_status_webhook_is_read_without_any_model(monkeypatch):
    def refused(*_args, **_kwargs):
        raise AssertionError("a pydantic model read a plain status webhook")

    for model in (inbound._Envelope, inbound._Change, inbound._MessagesValue, inbound._Status):
        monkeypatch.setattr(model, "parse_obj", classmethod(refused))
    payload = status_webhook(status_object("sent"))
    payload["entry"][0]["changes"][0]["value"]["errors"] = [{"code": 131000, "title": "Something went wrong"}]

    parsed = parse_webhook(encode(payload))

    (status,) = parsed.statuses
    assert (status.message_id, status.status, status.timestamp) == (
        "wamid.HBgMOTE5ODEyMzQ1Njc4FQIAERgSQTdCOTk0NkU1QjM0RjVGMTE4AA==", "sent", "1764719999")
    assert (status.recipient_id, status.recipient_phone, status.recipient_user_id) == (CUSTOMER, CUSTOMER, BSUID)
    assert status.raw == status_object("sent") and status.errors == []
    assert parsed.meta_errors == [{"code": 131000, "title": "Something went wrong"}]
    assert parsed.messages == parsed.rejected == parsed.skipped_changes == []


def test_a_failed_status_keeps_meta_s_errors_as_copies():
    payload = status_webhook(failed_status())
    parsed = parse_webhook(encode(payload))
    (status,) = parsed.statuses
    assert status.errors == failed_status()["errors"]
    assert status.errors[0] is not status.raw["errors"][0]  # as pydantic: the status's errors are copies


# --- the same answers as the models ------------------------------------------------------------

ODD_VALUES = [None, 123, 1.5, True, "", "x", [], [1], {}, {"a": 1}, [{}]]


def paths(document: Any, prefix: Tuple = ()) -> Iterator[Tuple]:
    """Every path into a JSON document (dict keys and list indices)."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield prefix + (index,)
            yield from paths(value, prefix + (index,))


def mutations(document: dict) -> Iterator[Tuple[str, Any]]:
    yield "as is", document
    for path in paths(document):
        *head, last = path
        for odd in ["<deleted>", *ODD_VALUES]:
            mutated = copy.deepcopy(document)
            parent = mutated
            for step in head:
                parent = parent[step]
            if odd == "<deleted>":
                del parent[last]
            else:
                parent[last] = copy.deepcopy(odd)
            yield f"{path} = {odd!r}", mutated
        if isinstance(document_at(document, path), dict):  # Meta adds fields: ignored either way
            mutated = copy.deepcopy(document)
            document_at(mutated, path)["new_field"] = {"added": True}
            yield f"{path} + new_field", mutated


def document_at(document: Any, path: Tuple) -> Any:
    for step in path:
        document = document[step]
    return document


def bases() -> List[Tuple[str, dict]]:
    two_changes = status_webhook(status_object("sent"))
    two_changes["entry"][0]["changes"].append(change(statuses=[status_object("read")]))
    two_entries = status_webhook(status_object("delivered"))
    two_entries["entry"].append({"id": "2", "changes": [change([text_message(CUSTOMER, "hi", "wamid.M2")])]})
    meta_error = status_webhook(status_object("read"))
    meta_error["entry"][0]["changes"][0]["value"]["errors"] = [{"code": 131000, "title": "Something went wrong"}]
    other_field = webhook({"field": "account_update", "value": {"phone_number": "15550001234"}})
    return [
        ("status", status_webhook(status_object("delivered"))),
        ("failed status", status_webhook(failed_status())),
        ("two statuses, two changes", two_changes),
        ("a status and a message in two entries", two_entries),
        ("a webhook error", meta_error),
        ("another field", other_field),
        ("message", message_webhook()),
    ]


@pytest.mark.parametrize("name, base", bases(), ids=[name for name, _ in bases()])
def test_the_plain_path_answers_what_the_models_answer(name, base, models_only):
    bodies = [(description, encode(mutated)) for description, mutated in mutations(base)]
    bodies += [("not an object", b"[1, 2]"), ("empty", b" "), ("no entry", b'{"object": "whatsapp_business_account"}')]
    plain = [outcome(body) for _, body in bodies]
    models_only()
    differences = [description for (description, body), answer in zip(bodies, plain) if outcome(body) != answer]
    assert len(bodies) > 100
    assert differences == []
