"""Inbox response time while a whitespace bomb is processed (issue 13, item 1).

Starts `python -m inbox serve` with the event-stream consumer inline (as `scripts/run.sh` does),
times `GET /login` one request at a time for a few seconds, then writes customer messages into Rasa's
SQL event-broker table (the way the bot's broker does) and keeps timing `GET /login` until the
inbox has mirrored the message, or gives up after --give-up seconds. Prints a report.

    inbox/.venv/bin/python bench/inbox_bomb_bench.py
    inbox/.venv/bin/python bench/inbox_bomb_bench.py --give-up 120    # cap for a build that freezes

Before the fix, "my order" + 3,000 spaces + "x" held the GIL and the database write lock for about a
minute (bench/README_inbox.md has the figures of both builds).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inbox_bench import OUT_DIR, InboxServer, free_port, summary  # noqa: E402

SENDER = "919800000777"
BOMBS = {
    "'my order' + 3,000 spaces + 'x'": "my order" + " " * 3_000 + "x",
    "'my order' + 100,000 spaces + 'x'": "my order" + " " * 100_000 + "x",
}


class BrokerTable:
    """Rasa 3.6's SQLEventBroker table: events(id, sender_id, data = the event JSON)."""

    def __init__(self, path: Path):
        self.path = path
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255), data TEXT)")

    def customer_says(self, text: str) -> None:
        event = {
            "sender_id": SENDER,
            "event": "user",
            "timestamp": time.time(),
            "text": text,
            "input_channel": "whatsapp",
            "metadata": {"whatsapp": {"wa_id": SENDER, "profile_name": "Bench Customer", "type": "text"}},
        }
        with sqlite3.connect(self.path) as connection:
            connection.execute("INSERT INTO events (sender_id, data) VALUES (?, ?)", (SENDER, json.dumps(event)))


def mirrored_messages(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.05) as connection:
        try:
            return connection.execute("SELECT count(*) FROM messages WHERE role = 'customer'").fetchone()[0]
        except sqlite3.OperationalError:  # locked by the writer: not yet
            return -1


def login_page_times(http: httpx.Client, until, limit_seconds: float) -> tuple[list[float], bool]:
    """Times GET /login back to back until `until()` is true or `limit_seconds` pass."""
    samples = []
    started = time.monotonic()
    while time.monotonic() - started < limit_seconds:
        if until():
            return samples, True
        begun = time.perf_counter()
        http.get("/login").raise_for_status()
        samples.append((time.perf_counter() - begun) * 1000)
    return samples, until()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--give-up", type=float, default=180.0, help="seconds to wait for one bomb to be mirrored")
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of GET /login before the bombs")
    args = parser.parse_args()
    work = OUT_DIR / "bomb"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.db*"):
        old.unlink()
    database, broker = work / "inbox.db", BrokerTable(work / "rasa_events.db")
    server = InboxServer(
        database,
        free_port(),
        overrides={
            "INBOX_CONSUMER": "inline",
            "INBOX_CONSUMER_POLL_SECONDS": "0.2",
            "RASA_EVENTS_DB_URL": f"sqlite:///{broker.path}",
        },
        log_name="inbox_bomb",
    )
    rows = []
    try:
        with httpx.Client(base_url=server.url, timeout=600) as http:
            baseline, _ = login_page_times(http, lambda: False, args.baseline)
            rows.append(("no bomb (baseline)", summary(baseline), None))
            expected = 0
            for label, text in BOMBS.items():
                broker.customer_says(text)
                broker.customer_says("Any news on order no. 2812?")
                expected += 2
                started = time.monotonic()
                samples, done = login_page_times(
                    http, lambda wanted=expected: mirrored_messages(database) >= wanted, args.give_up
                )
                rows.append((f"while {label}", summary(samples or [0.0]), time.monotonic() - started if done else None))
                if not done:
                    break  # the consumer is stuck in this message; the next one would only queue behind it
    finally:
        server.stop()

    lines = [
        "",
        "Inbox response time while a whitespace bomb is processed",
        "=" * 56,
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, GET /login one at a time",
        "",
        f"{'':<44}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>10}  mirrored after",
    ]
    for label, stats, seconds in rows:
        mirrored = (
            ""
            if label.startswith("no bomb")
            else (f"{seconds:.2f} s" if seconds is not None else f"not after {args.give_up:.0f} s")
        )
        lines.append(f"{label:<44}{stats['n']:>6}{stats['p50']:>9}{stats['p95']:>9}{stats['max']:>10}  {mirrored}")
    print("\n".join(lines))
    (OUT_DIR / "inbox_bomb_bench.json").write_text(
        json.dumps(
            [{"measure": label, **stats, "mirrored_after_s": seconds} for label, stats, seconds in rows], indent=2
        )
    )


if __name__ == "__main__":
    main()
