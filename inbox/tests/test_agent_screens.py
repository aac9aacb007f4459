"""What an agent sees and does: login, list and filters, search, notes, tags, assignment, replies, resolve."""

import html
import re

import pytest
from sqlalchemy import select

from inbox.models import Agent, Conversation, Message
from inbox.services.rasa import RESUME_EVENTS
from inbox.tests.conftest import PASSWORD, csrf_cookie, handoff_payload, login, post_form, post_handoff
from inbox.tests.fakes import PHONE_NUMBER_ID


def open_handoff(client, number=1, **overrides) -> int:
    wa_id = f"91980000{number:04d}"
    payload = handoff_payload(
        handoff_id=f"hf_screen_{number}",
        conversation_id=wa_id,
        customer={"whatsapp_id": wa_id, "name": overrides.pop("name", f"Customer {number}")},
        **overrides,
    )
    response = post_handoff(client, payload)
    assert response.status_code == 201, response.text
    return response.json()["inbox_conversation_id"]


def row_ids(html: str) -> list[int]:
    return [int(value) for value in re.findall(r'<li class="row[^"]*" data-conversation-id="(\d+)"', html)]


def counts(html: str) -> dict[str, int]:
    return {
        view: int(count)
        for view, count in re.findall(r'data-view="(\w+)">\s*<span>[^<]*</span><span class="count[^"]*">(\d+)', html)
    }


# -- login ----------------------------------------------------------------------------------


def test_login_with_the_right_password_lands_on_my_conversations(client, agents, inbox):
    response = login(client, "anita")
    assert response.status_code == 303 and response.headers["location"] == "/conversations?view=mine"
    page = client.get("/conversations?view=mine")
    assert page.status_code == 200 and "Anita Desai" in page.text
    with inbox.db.read() as session:
        assert session.get(Agent, agents["anita"]).status == "online"


def test_wrong_password_is_refused_and_repeated_failures_are_rate_limited(client, agents):
    client.get("/login")
    statuses = [
        client.post(
            "/login", data={"login": "anita", "password": "wrong", "csrftoken": csrf_cookie(client)}
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    # Even the right password waits until the minute is over.
    assert login(client, "anita").status_code == 429


def test_login_form_without_csrf_token_is_refused(client, agents):
    client.get("/login")
    response = client.post("/login", data={"login": "anita", "password": PASSWORD})
    assert response.status_code == 403


def test_a_logged_in_post_without_csrf_token_is_refused(client, agents):
    conversation_id = open_handoff(client)
    login(client, "anita")
    response = client.post(f"/conversations/{conversation_id}/notes", data={"text": "sneaky"})
    assert response.status_code == 403


def test_next_parameter_only_redirects_within_the_inbox(client, agents):
    client.get("/login")
    response = client.post(
        "/login",
        data={"login": "anita", "password": PASSWORD, "next": "//evil.example/x", "csrftoken": csrf_cookie(client)},
    )
    assert response.headers["location"] == "/conversations?view=mine"


# -- list, filters, counts, search ------------------------------------------------------------


def test_filters_and_counts(client, agents, inbox, clock):
    mine = open_handoff(client, 1)  # refund -> Anita
    others = open_handoff(client, 2, topic="complaint", tags=["complaint"])  # -> Priya
    with inbox.db.write() as session:
        for agent in session.scalars(select(Agent)):
            agent.status = "away"
    queued = open_handoff(client, 3, reason="customer_request", topic=None, tags=[])
    vip = open_handoff(client, 4, reason="customer_request", topic=None, tags=[])
    resolved = open_handoff(client, 5, reason="low_confidence", topic=None, tags=[])
    login(client, "anita")
    post_form(client, f"/conversations/{vip}/vip", {"is_vip": "1"})
    post_form(client, f"/conversations/{resolved}/resolve")
    clock.advance(minutes=6)  # past the 5-minute first-response target, nobody answered

    page = client.get("/conversations?view=all").text
    assert counts(page) == {"all": 5, "mine": 1, "vip": 1, "unassigned": 2, "breached": 4, "resolved": 1}
    assert set(row_ids(page)) == {mine, others, queued, vip, resolved}
    assert row_ids(client.get("/conversations?view=mine").text) == [mine]
    assert set(row_ids(client.get("/conversations?view=unassigned").text)) == {queued, vip}
    assert row_ids(client.get("/conversations?view=vip").text) == [vip]
    assert row_ids(client.get("/conversations?view=resolved").text) == [resolved]
    assert set(row_ids(client.get("/conversations?view=breached").text)) == {mine, others, queued, vip}
    row = client.get("/conversations?view=mine").text
    # the wait runs from requested_at (05:25:03), not from when the call arrived (05:30)
    meta = row[row.index('class="row-meta"') :][:700]
    assert "waiting 10m" in meta and "SLA breached" in meta and ">refund<" in meta, meta


def test_the_list_pages_with_a_cursor_newest_first(client, agents, clock):
    created = []
    for number in range(1, 56):
        created.append(
            open_handoff(client, number, reason="low_confidence", topic=None, tags=[], requested_at=None, transcript=[])
        )
        clock.advance(seconds=1)
    login(client, "anita")
    first_page = client.get("/conversations?view=all").text
    first = row_ids(first_page)
    assert len(first) == 50
    more = re.search(r'hx-get="(/conversations/list\?[^"]+)"', first_page).group(1)
    second = row_ids(client.get(html.unescape(more)).text)
    assert len(second) == 5 and not set(first) & set(second)
    assert first + second == sorted(created, reverse=True)


def test_bot_only_conversations_are_listed_as_handled_by_the_bot(client, agents, inbox, broker):
    from inbox.tests.test_event_stream import consume

    broker.user("919811110000", "Do you ship to Pune?", inbox.clock())
    broker.bot("919811110000", "Yes, all over India.", inbox.clock())
    consume(inbox, broker)
    login(client, "anita")
    page = client.get("/conversations?view=all").text
    assert "Handled by bot" in page and "Yes, all over India." in page


@pytest.mark.parametrize(
    "query, expected", [("Kavya", "kavya"), ("+91 98000 00002", "kavya"), ("kurta came", "both"), ("2812", "both")]
)
def test_search_finds_customers_by_name_phone_and_message_text(client, agents, query, expected):
    kavya = open_handoff(client, 2, name="Kavya Reddy")
    other = open_handoff(client, 3, name="Arjun Rao")
    login(client, "anita")
    found = set(row_ids(client.get("/conversations", params={"q": query}).text))
    assert found == ({kavya} if expected == "kavya" else {kavya, other})


@pytest.mark.parametrize(
    "query",
    ['"', 'kurta" OR "x', "*", "NEAR(a b)", "'; DROP TABLE messages; --", "%", "_", "\\", "a:b", "-x", "^", "((("],
)
def test_search_treats_what_the_agent_types_as_text(client, agents, inbox, query):
    open_handoff(client, 1)
    login(client, "anita")
    response = client.get("/conversations", params={"q": query})
    assert response.status_code == 200
    assert row_ids(response.text) == []
    with inbox.db.read() as session:
        assert session.scalar(select(Message.id).limit(1)) is not None  # still there


# -- the conversation: notes, tags, VIP, assignment -------------------------------------------


def test_transcript_shows_customer_bot_agent_and_notes_distinctly(client, agents):
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/notes", {"text": "Customer sent photos by email"})
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Hi Priya, I'm on it."})
    page = client.get(f"/conversations/{conversation_id}").text
    roles = re.findall(r'<li class="msg msg-(\w+)"', page)
    assert roles == ["customer", "bot", "customer", "system", "note", "agent"]
    assert "not sent to the customer" in page.split("msg-note")[1].split("</li>")[0]


def test_internal_notes_are_never_sent_to_the_customer(client, agents, external_services):
    conversation_id = open_handoff(client)
    login(client, "anita")
    response = post_form(client, f"/conversations/{conversation_id}/notes", {"text": "VIP? check order history"})
    assert response.status_code == 303
    assert external_services.graph_requests == []


def test_tags_can_be_added_and_removed(client, agents, inbox):
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/tags", {"tags": "Size-Exchange, kurta"})
    post_form(client, f"/conversations/{conversation_id}/tags/remove", {"tag": "refund"})
    panel = client.get(f"/conversations/{conversation_id}/panel").text
    assert re.findall(r'<li class="tag">(\S+)', panel) == ["kurta", "size-exchange"]
    bad = post_form(client, f"/conversations/{conversation_id}/tags", {"tags": "<b>"}, headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "Tags use letters" in bad.text


def test_reassigning_by_hand_is_recorded(client, agents, inbox):
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/assign", {"assignee": f"agent:{agents['rahul']}"})
    with inbox.db.read() as session:
        assert session.get(Conversation, conversation_id).assignee_id == agents["rahul"]
    assert (
        "Anita Desai assigned this conversation to Rahul Mehta." in client.get(f"/conversations/{conversation_id}").text
    )
    post_form(client, f"/conversations/{conversation_id}/assign", {"assignee": ""})
    with inbox.db.read() as session:
        assert session.get(Conversation, conversation_id).assignee_id is None


def test_vip_star_marks_the_customer(client, agents, inbox):
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/vip", {"is_vip": "1"})
    assert "★" in client.get(f"/conversations/{conversation_id}/panel").text
    assert row_ids(client.get("/conversations?view=vip").text) == [conversation_id]


# -- replies out, statuses back ------------------------------------------------------------------


def test_a_reply_goes_out_through_whatsapp_and_counts_as_first_response(
    client, agents, inbox, external_services, clock
):
    conversation_id = open_handoff(client)
    login(client, "anita")
    clock.advance(minutes=2)
    response = post_form(
        client,
        f"/conversations/{conversation_id}/reply",
        {"text": "Hi Priya, refund started."},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    sent = external_services.graph_requests[-1]
    assert sent["phone_number_id"] == PHONE_NUMBER_ID
    assert sent["body"]["to"] == "919800000001"
    assert sent["body"]["type"] == "text" and sent["body"]["text"]["body"] == "Hi Priya, refund started."
    assert sent["body"]["messaging_product"] == "whatsapp"
    assert "Sent to WhatsApp" in response.text
    with inbox.db.read() as session:
        reply = session.scalars(select(Message).where(Message.role == "agent")).one()
        conversation = session.get(Conversation, conversation_id)
        assert reply.whatsapp_message_id == "wamid.test1"
        assert conversation.first_response_at == clock.now and conversation.waiting_since is None


def test_delivery_statuses_update_the_reply_and_ignore_unknown_ids(client, agents, inbox):
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "On it!"})
    statuses = {
        "statuses": [
            {"id": "wamid.test1", "status": "delivered", "timestamp": "1764065703", "recipient_id": "919876543210"},
            {
                "id": "wamid.test1",
                "status": "sent",
                "timestamp": "1764065702",
                "recipient_id": "919876543210",
            },  # late, older
            {"id": "wamid.somebot", "status": "read", "timestamp": "1764065703", "recipient_id": "919876543210"},
        ]
    }
    response = client.post(
        "/api/v1/whatsapp/statuses", json=statuses, headers={"Authorization": "Bearer test-bot-token"}
    )
    assert response.status_code == 200 and response.json() == {"accepted": 2}
    transcript = client.get(f"/conversations/{conversation_id}/transcript").text
    assert 'data-delivery="delivered"' in transcript


def test_a_failed_delivery_shows_metas_reason(client, agents):
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Are you still there?"})
    failed = {
        "statuses": [
            {
                "id": "wamid.test1",
                "status": "failed",
                "timestamp": "1764065703",
                "recipient_id": "919876543210",
                "errors": [
                    {
                        "code": 131047,
                        "title": "Re-engagement message",
                        "message": "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
                    }
                ],
            }
        ]
    }
    client.post("/api/v1/whatsapp/statuses", json=failed, headers={"Authorization": "Bearer test-bot-token"})
    transcript = client.get(f"/conversations/{conversation_id}/transcript").text
    assert "Not delivered" in transcript and "24-hour window has closed" in transcript and "131047" in transcript


def test_an_api_error_on_send_is_shown_and_the_text_is_kept(client, agents, inbox, external_services):
    conversation_id = open_handoff(client)
    external_services.graph_answers.append(
        (
            400,
            {
                "error": {
                    "code": 131047,
                    "message": "(#131047) Re-engagement message",
                    "error_data": {"details": "more than 24 hours have passed"},
                }
            },
        )
    )
    login(client, "anita")
    response = post_form(
        client, f"/conversations/{conversation_id}/reply", {"text": "Hello again"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "24-hour window has closed" in response.text
    assert re.search(r'<textarea id="reply-text"[^>]*>Hello again</textarea>', response.text)
    with inbox.db.read() as session:
        reply = session.scalars(select(Message).where(Message.role == "agent")).one()
        assert reply.delivery_status == "failed" and reply.delivery_error_code == 131047
        assert session.get(Conversation, conversation_id).first_response_at is None


def test_a_failed_reply_can_be_retried(client, agents, inbox, external_services):
    conversation_id = open_handoff(client)
    external_services.graph_answers.append((400, {"error": {"code": 100, "message": "Invalid parameter"}}))
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Retry me"})
    with inbox.db.read() as session:
        reply = session.scalars(select(Message).where(Message.role == "agent")).one()
        assert reply.delivery_status == "failed"
    post_form(client, f"/messages/{reply.id}/retry")
    with inbox.db.read() as session:
        assert session.get(Message, reply.id).delivery_status == "accepted"
    assert len(external_services.graph_requests) == 2  # a definite refusal is not retried by itself
    keys = {request["body"]["biz_opaque_callback_data"] for request in external_services.graph_requests}
    assert len(keys) == 1  # the retry carries the reply's own idempotency key


def test_replies_are_only_possible_while_the_team_has_the_conversation(client, agents, inbox, broker):
    from inbox.tests.test_event_stream import consume

    broker.user("919811110000", "hi", inbox.clock())
    consume(inbox, broker)
    with inbox.db.read() as session:
        conversation_id = session.scalars(select(Conversation.id)).one()
    login(client, "anita")
    response = post_form(
        client, f"/conversations/{conversation_id}/reply", {"text": "hello"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422 and "The bot has this conversation" in response.text


# -- quick replies ---------------------------------------------------------------------------------


def test_seeded_quick_replies_are_offered_in_the_reply_box(client, agents):
    conversation_id = open_handoff(client)
    login(client, "anita")
    page = client.get(f"/conversations/{conversation_id}").text
    data = page.split('id="quick-replies-data">')[1].split("</script>")[0]
    for shortcut in ("eta", "size", "return", "refund", "vip-thanks"):
        assert f'"shortcut": "{shortcut}"' in data


def test_only_admins_edit_quick_replies(client, agents):
    login(client, "anita")
    assert post_form(client, "/quick-replies", {"shortcut": "hi", "text": "Hello!"}).status_code == 403
    client.cookies.clear()
    login(client, "admin")
    post_form(client, "/quick-replies", {"shortcut": "/COD", "text": "Cash on delivery is available up to ₹5,000."})
    page = client.get("/quick-replies").text
    assert 'value="cod"' in page and "₹5,000" in page


# -- resolve and hand back -------------------------------------------------------------------------


def test_resolve_hands_back_to_the_bot_through_rasas_api(client, agents, inbox, external_services):
    conversation_id = open_handoff(client)
    login(client, "anita")
    response = post_form(client, f"/conversations/{conversation_id}/resolve")
    assert response.status_code == 303
    # Authenticated with a JWT of role admin in the Authorization header: nothing secret in the URL.
    assert [(call["sender_id"], call["role"], call["events"]) for call in external_services.rasa_requests] == [
        ("91980000" + "0001", "admin", RESUME_EVENTS)
    ]
    assert external_services.rasa_requests[0]["url"].endswith("/conversations/919800000001/tracker/events")
    with inbox.db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.status == "resolved" and conversation.resolved_at is not None
    assert "Resolved by Anita Desai and handed back to the bot." in client.get(f"/conversations/{conversation_id}").text


def test_when_rasa_is_unreachable_the_agent_sees_why_and_the_conversation_stays_open(client, agents, inbox):
    conversation_id = open_handoff(client)
    inbox.rasa.base_url = "http://127.0.0.1:9"  # nothing listens there
    login(client, "anita")
    response = post_form(client, f"/conversations/{conversation_id}/resolve", headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "Rasa is not reachable" in response.text and "It stays open" in response.text
    with inbox.db.read() as session:
        assert session.get(Conversation, conversation_id).status == "open"


def test_rasa_refusing_the_jwt_is_explained(client, agents, inbox, external_services):
    conversation_id = open_handoff(client)
    inbox.rasa.jwt_secret = "not-the-secret-rasa-was-started-with"
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/resolve")
    page = client.get(f"/conversations/{conversation_id}").text
    assert "check that RASA_JWT_SECRET is the secret Rasa was started with" in page
    assert external_services.rasa_requests[-1]["role"] is None
    with inbox.db.read() as session:
        assert session.get(Conversation, conversation_id).status == "open"


# -- agents ------------------------------------------------------------------------------------------


def test_admin_adds_an_agent_who_can_then_sign_in(client, agents):
    login(client, "admin")
    post_form(
        client,
        "/agents",
        {
            "login": "sana",
            "name": "Sana Khan",
            "password": "a-long-password",
            "pronoun": "she",
            "role": "agent",
            "capacity": "4",
            "teams": ["Care"],
        },
    )
    assert "Sana Khan" in client.get("/agents").text
    client.cookies.clear()
    assert login(client, "sana", "a-long-password").status_code == 303


def test_deactivating_an_agent_signs_them_out(client, agents, inbox):
    login(client, "rahul")
    rahul_cookies = dict(client.cookies)
    client.cookies.clear()
    login(client, "admin")
    post_form(client, f"/agents/{agents['rahul']}", {"status": "away", "capacity": "5", "role": "agent", "active": "0"})
    client.cookies.clear()
    client.cookies.update(rahul_cookies)
    assert client.get("/conversations", headers={"Accept": "text/html"}).status_code == 303


def test_a_refused_note_stays_in_the_note_box_never_in_the_reply_box(client, agents, external_services):
    conversation_id = open_handoff(client)
    login(client, "anita")
    too_long = "x" * 10_001
    response = post_form(
        client, f"/conversations/{conversation_id}/notes", {"text": too_long}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422 and "at most 10000 characters" in response.text
    assert re.search(rf'<textarea id="note-text"[^>]*>{too_long}</textarea>', response.text)
    assert re.search(r'<textarea id="reply-text"[^>]*></textarea>', response.text)
    # Without htmx: the same, through a redirect.
    post_form(client, f"/conversations/{conversation_id}/notes", {"text": too_long})
    page = client.get(f"/conversations/{conversation_id}").text
    assert re.search(rf'<textarea id="note-text"[^>]*>{too_long}</textarea>', page)
    assert external_services.graph_requests == []


def test_an_expired_session_sends_htmx_requests_to_the_login(client, agents):
    conversation_id = open_handoff(client)
    response = client.get(f"/conversations/{conversation_id}/transcript", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/login"
