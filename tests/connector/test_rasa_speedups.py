"""The cached action-response validator accepts and rejects exactly what Rasa's own check does."""
from __future__ import annotations

import copy
from datetime import datetime

import pytest
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction

from connectors import rasa_speedups

VALID = {
    "events": [{"event": "slot", "timestamp": None, "name": "kb_match",
                "value": {"entry_id": "returns", "score": 0.8, "answered": True}}],
    "responses": [{"text": "Free returns within 14 days of delivery.", "buttons": []}],
}
INVALID = [
    {"events": "not a list"},
    {"events": [{"no_event_key": 1}]},
    {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": "text"},
    {"events": [{"event": 42}]},
]


@pytest.fixture
def original_and_cached(monkeypatch):
    original = RemoteAction._validate_action_result
    monkeypatch.setattr(RemoteAction, "_validate_action_result", original)
    monkeypatch.setattr(RemoteAction, rasa_speedups._INSTALLED_FLAG, False, raising=False)
    action = RemoteAction("action_answer_question", None)
    rasa_check = lambda result: original(action, result)  # noqa: E731
    rasa_speedups.install_cached_action_validator()
    cached_check = lambda result: RemoteAction._validate_action_result(action, result)  # noqa: E731
    assert RemoteAction._validate_action_result is not original
    return rasa_check, cached_check


def test_valid_responses_pass_both(original_and_cached):
    rasa_check, cached_check = original_and_cached
    assert rasa_check(copy.deepcopy(VALID)) is True
    assert cached_check(copy.deepcopy(VALID)) is True
    assert cached_check({}) is True  # an action that does nothing


@pytest.mark.parametrize("response", INVALID)
def test_invalid_responses_fail_with_the_same_error(original_and_cached, response):
    rasa_check, cached_check = original_and_cached
    with pytest.raises(ValidationError) as by_rasa:
        rasa_check(copy.deepcopy(response))
    with pytest.raises(ValidationError) as cached:
        cached_check(copy.deepcopy(response))
    assert cached.value.message == by_rasa.value.message
    assert "Failed to validate Action server response" in cached.value.message
    assert list(cached.value.path) == list(by_rasa.value.path)


def test_installing_twice_is_harmless(original_and_cached):
    _, cached_check = original_and_cached
    patched = RemoteAction._validate_action_result
    rasa_speedups.install_cached_action_validator()
    assert RemoteAction._validate_action_result is patched
    assert cached_check(copy.deepcopy(VALID)) is True


# --- checking each event against its own event name's schema -------------------------------


def every_kind_of_event() -> list:
    """One serialised event of each kind an action server can return (Rasa's own classes)."""
    from rasa.shared.core import events as e

    return [event.as_dict() for event in [
        e.UserUttered("hi", {"name": "greet", "confidence": 0.9}, [{"entity": "size", "value": "M", "start": 0, "end": 1}]),
        e.BotUttered("hello", {"buttons": [{"title": "Yes", "payload": "/affirm"}]}, {"utter_action": "utter_greet"}),
        e.SlotSet("size", "M"), e.SlotSet("kb_match", {"entry_id": "returns", "score": 0.8}),
        e.EntitiesAdded([{"entity": "size", "value": "M"}]), e.Restarted(), e.UserUtteranceReverted(),
        e.AllSlotsReset(), e.ReminderScheduled("EXTERNAL_nudge", datetime(2026, 1, 1)), e.ReminderCancelled("nudge"),
        e.ActionReverted(), e.StoryExported("story.yml"), e.FollowupAction("action_handoff"), e.ConversationPaused(),
        e.ConversationResumed(), e.ActionExecuted("action_listen", "RulePolicy", 1.0), e.AgentUttered("psst"),
        e.ActiveLoop("order_status_form"), e.LoopInterrupted(True),
        e.ActionExecutionRejected("action_x"), e.SessionStarted(), e.DefinePrevUserUtteredFeaturization(False),
    ]] + [  # Rasa 2's form events, which Rasa 3 still accepts (its classes now write them as loop events)
        {"event": "form", "name": "order_status_form", "timestamp": None},
        {"event": "form_validation", "validate": False, "timestamp": None},
    ]


def mutations(event: dict):
    """The event with each field in turn replaced by values of other JSON types, or removed."""
    for key in event:
        for value in (None, 42, 1.5, True, "text", [], ["x"], {}, {"x": 1}):
            yield {**event, key: value}
        yield {k: v for k, v in event.items() if k != key}
    yield {**event, "event": "no_such_event"}
    yield {**event, "extra_field": {"nested": [1, 2]}}


def test_the_quick_check_agrees_with_rasas_schema_on_every_event_kind_and_mutation():
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    rasa_says = validator_class(schema).is_valid
    quick = rasa_speedups.EventDiscriminatingValidator.build(schema, validator_class)
    assert quick is not None, "Rasa's schema no longer has the shape the quick check relies on"

    events = every_kind_of_event()
    assert len({event["event"] for event in events}) == 23  # every event name in Rasa's schema
    candidates = [{"events": events}, {}, {"events": []}, {"responses": []}, {"events": "x"}, {"events": [1]},
                  {"events": [None]}, {"events": events, "responses": [{"text": 1}]}, [], "text", None]
    candidates += [{"events": [mutated]} for event in events for mutated in mutations(event)]
    candidates += [{"events": [events[0], mutated]} for mutated in mutations(events[2])]
    verdicts = [(rasa_says(candidate), quick.is_valid(candidate)) for candidate in candidates]
    disagreements = [c for c, (rasa, ours) in zip(candidates, verdicts) if rasa != ours]
    assert disagreements == []
    # Both verdicts occur plenty, so agreement is not agreement on one answer.
    assert sum(rasa for rasa, _ in verdicts) > 100 and sum(not rasa for rasa, _ in verdicts) > 100


# An explicit start-up step: on only on the tested Rasa version, off with RASA_SPEEDUPS=0.
def test_the_start_up_step_says_whether_the_speed_ups_are_on(monkeypatch):
    monkeypatch.setattr(rasa_speedups, "install_cached_action_validator", lambda: None)
    monkeypatch.setattr(rasa_speedups, "install_direct_model_predictions", lambda: None)
    monkeypatch.setattr(rasa_speedups, "install_counted_sql_event_streaming", lambda: None)
    monkeypatch.setattr(rasa_speedups, "install_model_loading_without_a_training_step", lambda: None)
    monkeypatch.setattr(rasa_speedups, "install_kept_alive_endpoint_connections", lambda keepalive: None)
    monkeypatch.setattr(rasa_speedups, "install_outranked_policies_skipped", lambda: None)
    tested = rasa_speedups.TESTED_RASA_VERSION
    assert rasa_speedups.install({}, tested).startswith("Rasa speed-ups: on")
    assert rasa_speedups.install({"RASA_SPEEDUPS": "0"}, tested) == "Rasa speed-ups: off (RASA_SPEEDUPS=0)"
    assert "not the tested" in rasa_speedups.install({}, "3.6.22")


def test_switched_off_rasa_is_left_as_shipped(monkeypatch):
    def must_not_run(*_settings):
        raise AssertionError("installed although switched off")

    monkeypatch.setattr(rasa_speedups, "install_cached_action_validator", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_direct_model_predictions", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_counted_sql_event_streaming", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_model_loading_without_a_training_step", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_kept_alive_endpoint_connections", must_not_run)
    monkeypatch.setattr(rasa_speedups, "install_outranked_policies_skipped", must_not_run)
    rasa_speedups.install({"RASA_SPEEDUPS": "0"}, rasa_speedups.TESTED_RASA_VERSION)
    rasa_speedups.install({}, "3.6.20")


def test_the_tested_version_is_the_locked_one():
    import rasa

    assert rasa.__version__ == rasa_speedups.TESTED_RASA_VERSION


def test_known_third_party_warnings_are_quiet_and_others_are_not(monkeypatch):
    import warnings

    from connectors import rasa_start

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rasa_start.quiet_known_warnings({}) == len(rasa_start.KNOWN_WARNINGS)
        warnings.warn_explicit("declare_namespace", DeprecationWarning, "x.py", 1, module="pkg_resources")
        warnings.warn_explicit("LooseVersion", DeprecationWarning, "x.py", 1, module="sanic_cors.extension")
        warnings.warn_explicit("ours", DeprecationWarning, "x.py", 1, module="connectors.whatsapp")
        warnings.warn_explicit("a user warning", UserWarning, "x.py", 1, module="pkg_resources")
    assert [str(w.message) for w in caught] == ["ours", "a user warning"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rasa_start.quiet_known_warnings({"RASA_QUIET_WARNINGS": "0"}) == 0
        warnings.warn_explicit("declare_namespace", DeprecationWarning, "x.py", 1, module="pkg_resources")
    assert len(caught) == 1


# --- kept-alive connections to the action server --------------------------------------------------


@pytest.fixture
def kept_alive(monkeypatch):
    import rasa.core.run
    from rasa.utils.endpoints import EndpointConfig

    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    monkeypatch.setattr(rasa.core.run, "close_resources", rasa.core.run.close_resources)
    monkeypatch.setattr(EndpointConfig, rasa_speedups._SESSIONS_INSTALLED_FLAG, False, raising=False)
    shipped = getattr(EndpointConfig.session, "__wrapped__", EndpointConfig.session)
    monkeypatch.setattr(EndpointConfig, "session", shipped)
    rasa_speedups.install_kept_alive_endpoint_connections()
    assert EndpointConfig.session is not shipped
    return shipped


@pytest.fixture
async def action_server():
    """A stand-in action server that remembers, per request, which TCP connection carried it."""
    from aiohttp import web

    seen = []

    async def webhook(request):
        seen.append({"connection": request.transport.get_extra_info("peername"),
                     "token": request.headers.get("X-Action-Token"), "body": await request.json()})  # fmt: skip
        if (await request.json()).get("next_action") == "action_broken":
            return web.json_response({"error": "no such action"}, status=404)
        return web.json_response({"events": [], "responses": [{"text": "Free returns within 14 days."}]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    from tests.free_ports import free_port

    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/webhook", seen
    await rasa_speedups.close_pooled_sessions()
    await runner.cleanup()


async def test_action_calls_share_one_kept_alive_connection_with_rasas_requests_and_errors(kept_alive, action_server):
    from rasa.utils.endpoints import ClientResponseError, EndpointConfig

    url, seen = action_server
    endpoint = EndpointConfig(url, headers={"X-Action-Token": "secret-token"})
    answers = [await endpoint.request(json={"next_action": "action_answer_question", "turn": n}, method="post")
               for n in range(3)]  # fmt: skip
    assert answers == [{"events": [], "responses": [{"text": "Free returns within 14 days."}]}] * 3
    assert [request["body"]["turn"] for request in seen] == [0, 1, 2]
    assert {request["token"] for request in seen} == {"secret-token"}
    assert len({request["connection"] for request in seen}) == 1  # one connection, not three
    with pytest.raises(ClientResponseError) as refused:  # Rasa's own error for a 4xx, as before
        await endpoint.request(json={"next_action": "action_broken"}, method="post")
    assert refused.value.status == 404
    # Shipped Rasa opens a connection per call (what the speed-up saves).
    for n in range(2):
        async with kept_alive(endpoint) as fresh:
            async with fresh.post(url, json={"next_action": "action_answer_question", "turn": 10 + n}):
                pass
    assert len({request["connection"] for request in seen[-2:]}) == 2
    await rasa_speedups.close_pooled_sessions()  # what the Rasa server's stop does
    pooled = endpoint.__dict__["_kesar_lane_sessions"]
    assert all(session.closed for session in pooled.values())
    # A later call (a new server loop, a test) opens a new pooled session rather than failing.
    assert await endpoint.request(json={"next_action": "action_answer_question", "turn": 3}, method="post")
    await rasa_speedups.close_pooled_sessions()


def test_the_keep_alive_is_a_setting_and_a_bad_value_is_a_clear_error(monkeypatch):
    assert rasa_speedups.keepalive_seconds({}) == rasa_speedups.KEEPALIVE_SECONDS
    assert rasa_speedups.keepalive_seconds({"RASA_ACTION_KEEPALIVE_SECONDS": "0.5"}) == 0.5
    for bad in ("two", "-1", "301"):
        with pytest.raises(ValueError, match="RASA_ACTION_KEEPALIVE_SECONDS"):
            rasa_speedups.keepalive_seconds({"RASA_ACTION_KEEPALIVE_SECONDS": bad})
    from rasa.utils.endpoints import EndpointConfig

    monkeypatch.setattr(EndpointConfig, rasa_speedups._SESSIONS_INSTALLED_FLAG, False, raising=False)
    shipped = EndpointConfig.session
    rasa_speedups.install_kept_alive_endpoint_connections(0)
    assert EndpointConfig.session is shipped  # 0: a new connection per call, as shipped
    monkeypatch.setenv("RASA_ACTION_KEEPALIVE_SECONDS", "soon")
    from connectors import rasa_start

    monkeypatch.setattr(rasa_speedups, "install_cached_action_validator", lambda: pytest.fail("changed Rasa first"))
    # Only the speed-ups' part of the start-up step: its other steps change SQLAlchemy and warnings for the
    # whole test process (tests/connector/test_rasa_start_sql_errors.py checks Rasa without them).
    monkeypatch.setattr(rasa_start, "hide_sql_parameters", lambda: None)
    monkeypatch.setattr(rasa_start, "quiet_known_warnings", lambda: None)

    with pytest.raises(SystemExit, match="Rasa not started: RASA_ACTION_KEEPALIVE_SECONDS must be a number"):
        rasa_start.start_up_steps(serving=True)
