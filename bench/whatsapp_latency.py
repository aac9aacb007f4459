"""WhatsApp channel latency and throughput, side by side with Rasa's REST channel.

For one knowledge-base question it measures, in the same run against the same Rasa server:
- WhatsApp: from just before a signed webhook is POSTed to Rasa until the bot's reply reaches
  the sandbox's Graph API send endpoint (the sandbox stamps its arrival);
- REST: the time of `POST /webhooks/rest/webhook` (which returns the bot's reply).
Sequential p50/p95 (the two channels interleaved message by message), then throughput with 16
concurrent customers per channel, in rounds that alternate the channels (the report gives the
median round, so one noisy moment of a shared machine does not decide the comparison). Each
customer asks twice and is then replaced by a new one
(the bot hands off after three unresolved answers, which would silence later turns).

By default it starts what it needs (sandbox, action server, `rasa run` with the REST channel
and the connector) using the newest model in models/ or --model; pass --rasa-url and
--sandbox-url to measure running services instead (then WHATSAPP_APP_SECRET must be the
secret they use). Report: printed, and written as JSON to bench/out/whatsapp_latency.json.

    .venv/bin/python bench/whatsapp_latency.py
    .venv/bin/python bench/whatsapp_latency.py --model /tmp/bot/models/x.tar.gz --project-dir /tmp/bot
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Dict, List, Optional

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.free_ports import free_port  # noqa: E402

TARGETS = {"p50_ms": 60.0, "p95_ms": 120.0, "throughput": 40.0, "overhead": 1.3}
REPLY_TIMEOUT_SECONDS = 20
_customer_numbers = count(1)


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def new_customer(run_tag: str) -> str:
    return f"91{run_tag}{next(_customer_numbers):05d}"


@dataclass
class Services:
    rasa_url: str
    sandbox_url: str
    app_secret: str
    phone_number_id: str
    processes: List[subprocess.Popen] = field(default_factory=list)
    description: str = ""
    names: Dict[int, str] = field(default_factory=dict)  # pid -> service name, for CPU accounting

    def cpu_seconds(self) -> Dict[str, float]:
        """CPU time (user + system) used so far by each started service and by this load generator."""
        used = {"load generator": time.process_time()}
        parents = process_parents()  # one scan of /proc for all services
        for process in self.processes:
            if process.poll() is None:
                used[self.names.get(process.pid, str(process.pid))] = process_cpu_seconds(process.pid, parents)
        return used

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def _proc_stat(pid: int) -> List[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()  # fields from the 3rd on; the name may contain spaces


def process_parents() -> Dict[int, int]:
    """pid -> parent pid of every live process, from /proc."""
    parents: Dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_proc_stat(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue  # exited meanwhile
    return parents


def process_cpu_seconds(pid: int, parents: Dict[int, int]) -> float:
    """User + system CPU seconds of a process and its live descendants (e.g. Sanic workers), from /proc."""
    tree, added = {pid}, True
    while added:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        added = bool(children)
    ticks = 0
    for member in tree:
        try:
            fields = _proc_stat(member)
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def newest_model() -> Optional[Path]:
    if os.environ.get("RASA_MODEL"):
        return Path(os.environ["RASA_MODEL"])
    models = sorted((ROOT / "models").glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def wait_http(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} process exited ({process.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status < 500:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up within {timeout}s; see {log}")


def start_services(args: argparse.Namespace) -> Services:
    model = Path(args.model) if args.model else newest_model()
    if model is None or not model.exists():
        raise SystemExit("No model: train one (rasa train) or pass --model")
    project = Path(args.project_dir).resolve()
    work = ROOT / "bench" / "out" / "whatsapp_latency_run"  # logs and the store of the last run
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rasa_port, sandbox_port, actions_port = free_port(), free_port(), free_port()
    secret = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "SANDBOX_", "INBOX_"))}
    env.update({
        "WHATSAPP_VERIFY_TOKEN": secrets.token_hex(8), "WHATSAPP_APP_SECRET": secret,
        "WHATSAPP_ACCESS_TOKEN": secrets.token_hex(16), "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{project}", "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    })
    (work / "credentials.yml").write_text("rest:\nconnectors.whatsapp.WhatsAppInput:\n")
    env["SANIC_WORKERS"] = str(args.workers)
    endpoints = Path(args.endpoints) if args.endpoints else work / "endpoints.yml"
    processes: List[subprocess.Popen] = []
    if not args.endpoints:
        text = f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n'
        if args.workers > 1:
            # Several Sanic workers need a lock store and a tracker store they all share.
            redis_server = shutil.which("redis-server")
            if not redis_server:
                raise SystemExit("--workers > 1 needs redis-server (apt-get install redis-server)")
            redis_port = free_port()
            processes.append(subprocess.Popen(
                [redis_server, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                stdout=open(work / "redis.log", "wb"), stderr=subprocess.STDOUT))
            text += (f"lock_store:\n  type: redis\n  url: 127.0.0.1\n  port: {redis_port}\n  db: 1\n"
                     f"tracker_store:\n  type: redis\n  url: 127.0.0.1\n  port: {redis_port}\n  db: 0\n")
        endpoints.write_text(text)

    def launch(name: str, command: List[str], extra: Dict[str, str], ready: str, timeout: float) -> None:
        log = work / f"{name}.log"
        process = subprocess.Popen(command, cwd=project, env={**env, **extra}, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        processes.append(process)
        services.names[process.pid] = name
        print(f"  starting {name} (log {log})", flush=True)
        wait_http(ready, process, timeout, log)

    services = Services(f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{sandbox_port}", secret,
                        "106540352242922", processes,
                        f"model {model.name}, project {project}, Rasa Sanic workers {args.workers}")
    services.names.update({process.pid: "redis" for process in processes})
    try:
        launch("sandbox", [sys.executable, "-m", "whatsapp_sandbox"],
               {"SANDBOX_PORT": str(sandbox_port), "SANDBOX_STATUS_DELAYS": args.status_delays,
                "SANDBOX_WEBHOOK_URL": f"{services.rasa_url}/webhooks/whatsapp/webhook", "PYTHONPATH": str(ROOT)},
               f"{services.sandbox_url}/sandbox/api/config", 30)
        if not args.endpoints and (project / "actions" / "__init__.py").exists():
            launch("actions", [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(actions_port)],
                   {}, f"http://127.0.0.1:{actions_port}/health", 120)
        launch("rasa", [sys.executable, "-m", "connectors.rasa_start", "run", "--model", str(model), "--port", str(rasa_port),
                        "--credentials", str(work / "credentials.yml"), "--endpoints", str(endpoints)],
               {"WHATSAPP_API_BASE_URL": f"{services.sandbox_url}/v21.0",
                "WHATSAPP_STORE_URL": args.store_url or f"sqlite:///{work / 'whatsapp.db'}"},
               f"{services.rasa_url}/webhooks/whatsapp/", 300)
    except BaseException:
        services.stop()
        raise
    return services


class Channels:
    """Sends one message on each channel and times it until the reply is out."""

    def __init__(self, session: aiohttp.ClientSession, services: Services, replies_per_turn: Dict[int, int]) -> None:
        self.session = session
        self.services = services
        self.replies_per_turn = replies_per_turn
        self.sample_replies: Dict[str, str] = {}
        self.failures: Dict[str, List[str]] = {"rest": [], "whatsapp": []}

    async def rest(self, sender: str, text: str, turn: int) -> Optional[float]:
        """Seconds until the reply, or None (counted as a failure) when the bot said nothing."""
        started = time.perf_counter()
        async with self.session.post(f"{self.services.rasa_url}/webhooks/rest/webhook",
                                     json={"sender": sender, "message": text}) as answer:
            replies = await answer.json()
        elapsed = time.perf_counter() - started
        if answer.status != 200 or not replies:
            self.failures["rest"].append(f"{sender}: HTTP {answer.status}, replies {replies!r}")
            return None
        self.replies_per_turn.setdefault(turn, len(replies))
        self.sample_replies.setdefault("rest", replies[0].get("text", str(replies[0])))
        return elapsed

    async def whatsapp(self, wa_id: str, text: str, turn: int, after_seq: int) -> "tuple[Optional[float], int]":
        """Seconds until the (last expected) reply reached the sandbox, or None on a failure."""
        message_id = f"wamid.bench{secrets.token_hex(12)}"
        payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": self.services.phone_number_id},
            "contacts": [{"profile": {"name": "Bench Customer"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": message_id, "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": text}}]}}]}]}
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(self.services.app_secret.encode(), body, hashlib.sha256).hexdigest()
        expected = self.replies_per_turn.get(turn, 1)
        started = time.time()
        async with self.session.post(f"{self.services.rasa_url}/webhooks/whatsapp/webhook", data=body,
                                     headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"WhatsApp webhook answered HTTP {answer.status}")
        received: List[Dict[str, Any]] = []
        deadline = time.monotonic() + REPLY_TIMEOUT_SECONDS
        seq = after_seq
        while len(received) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.failures["whatsapp"].append(f"{wa_id}: {len(received)}/{expected} replies within {REPLY_TIMEOUT_SECONDS} s")
                return None, seq
            async with self.session.get(f"{self.services.sandbox_url}/sandbox/api/messages", params={
                    "wa_id": wa_id, "direction": "business", "after": str(seq), "wait": f"{min(remaining, 30):.1f}"}) as answer:
                found = (await answer.json())["messages"]
            received.extend(found)
            if found:
                seq = found[-1]["seq"]
        last = received[expected - 1]
        content = last["content"]
        self.sample_replies.setdefault("whatsapp", content.get("text", {}).get("body") or json.dumps(content)[:120])
        return last["at"] - started, seq


async def sandbox_last_seq(channels: Channels) -> int:
    async with channels.session.get(f"{channels.services.sandbox_url}/sandbox/api/messages",
                                    params={"after": "999999999"}) as answer:
        return (await answer.json())["last_seq"]


async def sequential(channels: Channels, question: str, messages: int, per_customer: int, run_tag: str) -> Dict[str, List[float]]:
    results: Dict[str, List[float]] = {"rest": [], "whatsapp": []}
    rest_customer = wa_customer = ""
    seq = await sandbox_last_seq(channels)
    for index in range(messages):
        turn = index % per_customer
        if turn == 0:
            rest_customer, wa_customer = f"bench-rest-{run_tag}-{index}", new_customer(run_tag)
        rest_latency = await channels.rest(rest_customer, question, turn)
        latency, seq = await channels.whatsapp(wa_customer, question, turn, seq)
        results["rest"] += [rest_latency] if rest_latency is not None else []
        results["whatsapp"] += [latency] if latency is not None else []
    return results


async def concurrent(channels: Channels, channel: str, question: str, total: int, workers: int,
                     per_customer: int, run_tag: str) -> Dict[str, Any]:
    latencies: List[float] = []
    remaining = count()
    seq_start = await sandbox_last_seq(channels)

    async def worker(worker_index: int) -> None:
        while True:
            if next(remaining) * per_customer >= total:
                return
            rest_customer, wa_customer = f"bench-c-{run_tag}-{worker_index}-{time.time_ns()}", new_customer(run_tag)
            seq = seq_start
            for turn in range(per_customer):
                if channel == "rest":
                    latency = await channels.rest(rest_customer, question, turn)
                else:
                    latency, seq = await channels.whatsapp(wa_customer, question, turn, seq)
                if latency is not None:
                    latencies.append(latency)

    cpu_before = channels.services.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(workers)))
    wall = time.perf_counter() - started
    cpu_after = channels.services.cpu_seconds()
    # Where the CPU went: on 2 cores, every service and the load generator compete for it.
    cpu_ms_per_message = {
        name: (cpu_after[name] - cpu_before[name]) * 1000 / max(len(latencies), 1)
        for name in cpu_after if name in cpu_before
    }
    return {"messages": len(latencies), "seconds": wall, "throughput": len(latencies) / wall, "latencies": latencies,
            "cpu_ms_per_message": cpu_ms_per_message}


def combine_rounds(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Throughput: the median round (one slow moment of a noisy machine does not decide it);
    latencies pooled; CPU per message over all rounds."""
    messages = sum(r["messages"] for r in rounds)
    cpu: Dict[str, float] = {}
    for name in rounds[0]["cpu_ms_per_message"]:
        cpu[name] = sum(r["cpu_ms_per_message"][name] * r["messages"] for r in rounds) / max(messages, 1)
    return {"messages": messages, "seconds": sum(r["seconds"] for r in rounds),
            "throughput": statistics.median(r["throughput"] for r in rounds),
            "round_throughputs": [round(r["throughput"], 1) for r in rounds],
            "latencies": [latency for r in rounds for latency in r["latencies"]], "cpu_ms_per_message": cpu}


def summary_ms(values: List[float]) -> Dict[str, float]:
    return {"p50_ms": percentile(values, 0.5) * 1000, "p95_ms": percentile(values, 0.95) * 1000,
            "mean_ms": statistics.fmean(values) * 1000, "max_ms": max(values) * 1000, "n": len(values)}


async def measure(args: argparse.Namespace, services: Services) -> Dict[str, Any]:
    run_tag = f"{int(time.time()) % 100000:05d}"  # customer numbers never repeat across runs
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=4 * args.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        channels = Channels(session, services, {})
        print(f"  warm-up: {args.warmup} messages per channel", flush=True)
        await sequential(channels, args.question, args.warmup, args.per_customer, run_tag + "1")
        print(f"  sequential: {args.sequential} messages per channel, interleaved", flush=True)
        seq = await sequential(channels, args.question, args.sequential, args.per_customer, run_tag + "2")
        print(f"  concurrent: {args.rounds} rounds of {args.concurrent_messages} messages per channel, channels "
              f"alternating, {args.concurrency} customers at a time", flush=True)
        rounds: Dict[str, List[Dict[str, Any]]] = {"rest": [], "whatsapp": []}
        for round_index in range(args.rounds):
            for channel in ("rest", "whatsapp"):
                rounds[channel].append(await concurrent(
                    channels, channel, args.question, args.concurrent_messages, args.concurrency, args.per_customer,
                    f"{run_tag}{3 + round_index}{0 if channel == 'rest' else 1}"))  # digits: part of WhatsApp ids
        rest_load, wa_load = combine_rounds(rounds["rest"]), combine_rounds(rounds["whatsapp"])
    return {
        "question": args.question,
        "failures": channels.failures,
        "replies_per_turn": channels.replies_per_turn,
        "sample_replies": channels.sample_replies,
        "sequential": {"rest": summary_ms(seq["rest"]), "whatsapp": summary_ms(seq["whatsapp"])},
        "concurrent": {
            name: {"throughput_msg_s": load["throughput"], "round_throughputs_msg_s": load["round_throughputs"],
                   "seconds": load["seconds"], **summary_ms(load["latencies"]),
                   "cpu_ms_per_message": load["cpu_ms_per_message"]}
            for name, load in (("rest", rest_load), ("whatsapp", wa_load))
        },
    }


def report(result: Dict[str, Any], services: Services, args: argparse.Namespace) -> str:
    seq, load = result["sequential"], result["concurrent"]
    overhead_p50 = seq["whatsapp"]["p50_ms"] / seq["rest"]["p50_ms"]
    overhead_p95 = seq["whatsapp"]["p95_ms"] / seq["rest"]["p95_ms"]
    overhead_load = load["rest"]["throughput_msg_s"] / load["whatsapp"]["throughput_msg_s"]
    checks = [
        ("WhatsApp sequential p50 <= 60 ms", seq["whatsapp"]["p50_ms"] <= TARGETS["p50_ms"]),
        ("WhatsApp sequential p95 <= 120 ms", seq["whatsapp"]["p95_ms"] <= TARGETS["p95_ms"]),
        (f"WhatsApp >= 40 msg/s at {args.concurrency} concurrent", load["whatsapp"]["throughput_msg_s"] >= TARGETS["throughput"]),
        ("connector overhead <= 1.3x REST (p50, p95, throughput)",
         max(overhead_p50, overhead_p95, overhead_load) <= TARGETS["overhead"]),
    ]
    result["overhead"] = {"p50": overhead_p50, "p95": overhead_p95, "throughput": overhead_load}
    result["targets_met"] = {name: ok for name, ok in checks}
    lines = [
        "WhatsApp channel benchmark",
        f"  {services.description}",
        f"  machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        f"  question: {result['question']!r}; replies per turn {result['replies_per_turn']}",
        f"  sample reply: {str(result['sample_replies'].get('whatsapp', ''))[:90]!r}",
        f"  status webhooks from the sandbox: {args.status_delays}",
        f"  turns without a reply (excluded): REST {len(result['failures']['rest'])}, "
        f"WhatsApp {len(result['failures']['whatsapp'])}",
        "",
        f"  {'':34}{'REST':>10}{'WhatsApp':>10}{'ratio':>8}",
        f"  {'sequential p50 (ms)':34}{seq['rest']['p50_ms']:10.1f}{seq['whatsapp']['p50_ms']:10.1f}{overhead_p50:8.2f}",
        f"  {'sequential p95 (ms)':34}{seq['rest']['p95_ms']:10.1f}{seq['whatsapp']['p95_ms']:10.1f}{overhead_p95:8.2f}",
        f"  {f'throughput at {args.concurrency} customers (msg/s)':34}{load['rest']['throughput_msg_s']:10.1f}"
        f"{load['whatsapp']['throughput_msg_s']:10.1f}{overhead_load:8.2f}",
        f"    (median of rounds: REST {load['rest']['round_throughputs_msg_s']}, "
        f"WhatsApp {load['whatsapp']['round_throughputs_msg_s']})",
        f"  {f'p50 at {args.concurrency} customers (ms)':34}{load['rest']['p50_ms']:10.1f}{load['whatsapp']['p50_ms']:10.1f}",
        f"  {f'p95 at {args.concurrency} customers (ms)':34}{load['rest']['p95_ms']:10.1f}{load['whatsapp']['p95_ms']:10.1f}",
        "",
        f"  CPU per message at {args.concurrency} customers (ms), by process:",
    ]
    for name in load["whatsapp"]["cpu_ms_per_message"]:
        rest_cpu = load["rest"]["cpu_ms_per_message"].get(name, float("nan"))
        lines.append(f"  {'  ' + name:34}{rest_cpu:10.1f}{load['whatsapp']['cpu_ms_per_message'][name]:10.1f}")
    lines.append("")
    lines += [f"  [{'met' if ok else 'MISSED'}] {name}" for name, ok in checks]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--question", default="what is your return policy?")
    parser.add_argument("--sequential", type=int, default=100, help="messages per channel, one at a time")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--concurrent-messages", type=int, default=320, help="messages per channel and round under load")
    parser.add_argument("--rounds", type=int, default=3,
                        help="load rounds per channel, channels alternating; throughput is the median round")
    parser.add_argument("--per-customer", type=int, default=2, help="questions per customer before a new one")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--model", help="model archive (default: RASA_MODEL or the newest in models/)")
    parser.add_argument("--project-dir", default=str(ROOT), help="Rasa project (actions/ package, relative paths)")
    parser.add_argument("--endpoints", help="endpoints.yml to use instead of one naming only the action server")
    parser.add_argument("--store-url", help="WHATSAPP_STORE_URL for the connector (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Sanic workers of the Rasa server (SANIC_WORKERS); > 1 starts a Redis for the "
                             "lock and tracker stores")
    parser.add_argument("--status-delays", default="0.05,0.3,1.0",
                        help="sandbox sent,delivered,read webhook delays in seconds, or 'off'")
    parser.add_argument("--rasa-url", help="measure a running Rasa server (with the connector) instead")
    parser.add_argument("--sandbox-url", help="the running sandbox that server sends to")
    parser.add_argument("--json-out", default=str(ROOT / "bench" / "out" / "whatsapp_latency.json"))
    args = parser.parse_args()

    if args.rasa_url or args.sandbox_url:
        if not (args.rasa_url and args.sandbox_url and os.environ.get("WHATSAPP_APP_SECRET")):
            raise SystemExit("--rasa-url needs --sandbox-url and WHATSAPP_APP_SECRET in the environment")
        services = Services(args.rasa_url.rstrip("/"), args.sandbox_url.rstrip("/"), os.environ["WHATSAPP_APP_SECRET"],
                            os.environ.get("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"), description=f"running server {args.rasa_url}")
    else:
        print("Starting services…", flush=True)
        services = start_services(args)
    try:
        try:  # the load generator shares the 2 cores with what it measures: keep its CPU low
            import uvloop
            uvloop.install()
        except ImportError:
            pass
        result = asyncio.run(measure(args, services))
    finally:
        services.stop()
    text = report(result, services, args)
    print()
    print(text)
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "report": text}, indent=2))
    print(f"\n  JSON: {out}")


if __name__ == "__main__":
    main()
