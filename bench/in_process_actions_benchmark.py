"""CPU per message of the custom-action path: actions on the action server against actions inside Rasa
(connectors/in_process_actions.py), in alternating blocks so that the machine's drift hits both alike.

The trained model is loaded twice in this process (as tests/integration does it, with the Rasa speed-ups): one agent
whose endpoint sends every action to a real action server (`python -m actions.server`, started here), one whose
endpoint names `in_process_actions: [action_answer_question, action_session_start]` as the production and cluster
profiles do. Each block sends `--messages` knowledge-base questions through one agent (a new customer every two
messages, so the session start runs every other message, as in bench/capacity_benchmark.py), in memory (no tracker
store, broker or webhook: only what the two paths do differently is left). CPU = this process's CPU time (Rasa) plus
the action server's utime + stime from /proc, per message. Blocks alternate remote / in-process; the report gives
each side's median and the paired differences (remote minus in-process, block by block).

    .venv/bin/python bench/in_process_actions_benchmark.py [--blocks 24] [--messages 60]

Prints the report; writes nothing. The capacity benchmark's runs are too noisy for a ~3 ms difference on this
machine (bench/README_cluster.md, "Session 30"); this one measures it directly.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from rasa_floor_benchmark import process_seconds  # noqa: E402  (after the path: run as a script)

NAMES = ["action_answer_question", "action_session_start"]
TEXTS = ["what is your return policy?", "how long does delivery take to pune"]  # both answered from the KB


async def block(agent, messages: int) -> None:
    from rasa.core.channels.channel import UserMessage

    for _ in range(messages // len(TEXTS)):
        sender = f"91{uuid.uuid4().int % 10**10:010d}"
        for text in TEXTS:
            await agent.handle_message(UserMessage(text, sender_id=sender))


async def measure(remote, local, server_pid: int, blocks: int, messages: int):
    await block(remote, 2 * len(TEXTS) * 4)  # warm-up: both paths, every lazy load done
    await block(local, 2 * len(TEXTS) * 4)
    rows = {"action server": [], "in-process": []}
    for number in range(blocks):
        side = "action server" if number % 2 == 0 else "in-process"
        cpu, server = time.process_time(), process_seconds(server_pid)
        await block(remote if side == "action server" else local, messages)
        rasa_ms = (time.process_time() - cpu) * 1000 / messages
        server_ms = (process_seconds(server_pid) - server) * 1000 / messages
        rows[side].append((rasa_ms, server_ms))
        print(f"  block {number + 1:2d} {side:13s} Rasa {rasa_ms:5.2f} ms  action server {server_ms:5.2f} ms",
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=24, help="blocks in all, alternating (even)")
    parser.add_argument("--messages", type=int, default=60, help="messages per block")
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tests.free_ports import free_port
    from tests.integration.conftest import load_agent, wait_until_up

    port = free_port()
    env = {**os.environ, "ACTION_SERVER_TOKEN": os.urandom(24).hex()}
    env.pop("INBOX_URL", None)
    log = open(os.devnull, "w")
    server = subprocess.Popen([sys.executable, "-m", "actions.server", "--host", "127.0.0.1", "--port", str(port),
                               "--dev"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server, 300)
        import structlog
        from rasa.utils.endpoints import EndpointConfig

        from connectors import in_process_actions

        in_process_actions.install()
        url = f"http://127.0.0.1:{port}/webhook"
        remote = load_agent(action_endpoint=EndpointConfig(url=url))
        local = load_agent(action_endpoint=EndpointConfig(url=url, in_process_actions=NAMES))
        if in_process_actions.LOADER.load(frozenset(NAMES)) is None:
            raise SystemExit(f"in-process actions did not load: {in_process_actions.LOADER.error}")
        logging.disable(logging.INFO)  # Rasa's debug and info lines would be most of the CPU measured
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        print(f"{args.blocks} blocks of {args.messages} messages, alternating; load average {os.getloadavg()[0]:.2f}")
        rows = asyncio.run(measure(remote, local, server.pid, args.blocks, args.messages))
    finally:
        server.terminate()
        server.wait(timeout=20)
    print("\nCPU ms per message (median of the blocks)")
    for side, values in rows.items():
        rasa, action = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        total = statistics.median(v[0] + v[1] for v in values)
        print(f"  {side:13s}  Rasa {rasa:5.2f}  action server {action:5.2f}  together {total:5.2f}")
    differences = [sum(a) - sum(b) for a, b in zip(rows["action server"], rows["in-process"])]
    print(f"  saved by in-process actions, block by block: {', '.join(f'{d:.2f}' for d in differences)}")
    print(f"  median {statistics.median(differences):.2f} ms per message; "
          f"{sum(d > 0 for d in differences)} of {len(differences)} pairs favour in-process")


if __name__ == "__main__":
    main()
