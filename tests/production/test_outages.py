"""Short outages lose nothing (issue 13, item 6), on the production profile.

PostgreSQL (tracker store, event broker, inbox and connector databases: one cluster) or Redis (Rasa's lock
store) is frozen with SIGSTOP for 20 s: connections stay open and nothing answers. PostgreSQL is also shut down
and started again 20 s later (connections cut, new ones refused: every store call fails at once).
Meanwhile a customer writes, or an agent replies. After SIGCONT every customer message must be answered (or
handed off) exactly once and the agent's reply must reach the customer exactly once. Each test prints its
figures: messages sent, answered once, lost, duplicated, and the time from the resume to the last reply.

The waits are conditions with generous ceilings (a reply arriving), never margins a slow machine could miss;
the only fixed durations are the outage itself and the quiet period in which a duplicate would show up.
"""
from __future__ import annotations

import contextlib
import glob
import shlex
import subprocess
import threading
import time

import pytest

from tests.e2e.test_patterns import HONEST_HANDOFF, KB_QUESTIONS, assert_handed_off, assert_kb_answer

OUTAGE_SECONDS = 20
# After the last expected reply: long enough for a redelivered webhook or a retried send to show up twice.
# (The sandbox redelivers a webhook it got no answer for; the connector's store drops the duplicate.)
QUIET_SECONDS = 10
RECOVERY_CEILING_SECONDS = 240  # well inside the connector's 5-minute retry budget
BOT_UNAVAILABLE = "technical problem"  # escalation.yml messages.bot_unavailable


def in_background(target, *args) -> tuple[threading.Thread, list]:
    """Runs `target` in a thread (it blocks while the outage lasts); the list receives its exception, if any."""
    errors: list = []

    def run():
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@contextlib.contextmanager
def postgres_stopped(production):
    """PostgreSQL shut down (`pg_ctl stop -m fast`: connections cut, new ones refused), then started again with
    the same options (postmaster.opts) on the same port. The other kind of outage: errors, not silence."""
    data_dir = production.postgres.data_dir
    pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
    arguments = shlex.split((data_dir / "postmaster.opts").read_text())[1:]
    at = arguments.index("-D")
    options = shlex.join(arguments[:at] + arguments[at + 2:])
    run = lambda command: subprocess.run(["su", "postgres", "-c", command], check=True,  # noqa: E731
                                         capture_output=True, text=True)
    run(f"{pg_ctl} -D {shlex.quote(str(data_dir))} -m fast -w stop")
    try:
        yield
    finally:
        run(f"{pg_ctl} -D {shlex.quote(str(data_dir))} -l {shlex.quote(str(data_dir / 'server.log'))} -w "
            f"-o {shlex.quote(options)} start")


def outage(production, service: str, during) -> float:
    """`service` unavailable for OUTAGE_SECONDS while `during()` starts what must survive it; returns the resume
    time. "postgres" / "redis": frozen (SIGSTOP); "postgres-stopped": shut down and started again."""
    down = postgres_stopped(production) if service == "postgres-stopped" else production.paused(service)
    with down:
        frozen_at = time.monotonic()
        during()
        time.sleep(max(0.0, frozen_at + OUTAGE_SECONDS - time.monotonic()))
    return time.monotonic()


def described(service: str) -> str:
    return "postgres shut down" if service == "postgres-stopped" else f"{service} frozen"


def report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n[outage figures] {line}")


@pytest.mark.parametrize("service", ["postgres", "redis", "postgres-stopped"])
def test_customer_messages_during_a_20_s_outage_are_each_answered_once(service, healthy, new_customer, capsys):
    customer = new_customer()
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))  # a conversation under way
    questions = KB_QUESTIONS[1:]

    def customer_writes():
        customer.send(questions[1])  # may hang until the sandbox's 10 s timeout, or get a 503: Meta redelivers

    sender = None

    def start():
        nonlocal sender
        sender = in_background(customer_writes)

    # The first message is stored (webhook answered 200) and its turn has just begun when the outage starts.
    customer.send(questions[0])
    resumed_at = outage(healthy, service, start)
    replies = customer.replies(len(questions), timeout=RECOVERY_CEILING_SECONDS)
    recovered = time.monotonic() - resumed_at
    replies += customer.silence(QUIET_SECONDS)
    thread, errors = sender
    thread.join(timeout=60)
    assert not errors, errors

    answered = [r for r in replies if not HONEST_HANDOFF.search(r) and BOT_UNAVAILABLE not in r]
    handed_off = [r for r in replies if HONEST_HANDOFF.search(r) or BOT_UNAVAILABLE in r]
    lost = max(0, len(questions) - len(replies))
    duplicated = max(0, len(replies) - len(questions))
    report(capsys, f"{described(service)} {OUTAGE_SECONDS} s mid-conversation: {len(questions)} customer messages, "
                   f"{len(answered)} answered + {len(handed_off)} handed off, {lost} lost, {duplicated} duplicated; "
                   f"last reply {recovered:.1f} s after the resume")
    assert (lost, duplicated) == (0, 0), replies
    for reply in answered:
        assert_kb_answer([reply])


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_an_agent_reply_during_a_20_s_outage_reaches_the_customer_once(service, healthy, new_customer, inbox_db,
                                                                      agent_login, capsys):
    customer = new_customer()
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))
    assert_handed_off(customer.say("agent please"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    login = inbox_db.query("select login from agents where id = ?", conversation["assignee_id"])[0]["login"]
    agent = agent_login(login)
    text = f"Hi, this is a person from the team ({service} test). Looking into it now."

    sender = None

    def start():
        nonlocal sender
        sender = in_background(agent.reply, conversation["id"], text)

    resumed_at = outage(healthy, service, start)
    received = customer.replies(1, timeout=RECOVERY_CEILING_SECONDS)
    recovered = time.monotonic() - resumed_at
    received += customer.silence(QUIET_SECONDS)
    thread, errors = sender
    thread.join(timeout=120)

    copies = received.count(text)
    report(capsys, f"{described(service)} {OUTAGE_SECONDS} s during an agent reply: reached the customer {copies} time(s), "
                   f"{len(received) - copies} other message(s); {recovered:.1f} s after the resume; "
                   f"agent's request: {'ok' if not errors else repr(errors[0])[:200]}")
    assert received == [text], received
    assert not errors, errors
    # The inbox shows it as the agent's message, once.
    inbox_db.wait_message(conversation["id"], "agent", text, timeout=60)
    assert inbox_db.messages(conversation["id"]).count(("agent", text)) == 1
