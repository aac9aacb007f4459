"""Capacity of the cluster profile (issue 16 item 4): throughput, latency and CPU per message with one and with two
Rasa instances behind the load balancer, at 16 and 64 concurrent customers, and the sizing that follows from them.

It starts the whole cluster profile as tests/cluster does (tests/cluster/harness.py: every line of
deploy/cluster/Procfile.cluster as its own process, a throwaway PostgreSQL, the WhatsApp sandbox playing Meta) and
drives it as Meta would: signed webhooks (bench/whatsapp_latency.py's `Channels`) POSTed to the load balancer; a
message's latency runs until the bot's reply reaches the sandbox's Graph API. The sandbox sends its sent/delivered/
read status webhooks back through the load balancer, as Meta does. Each customer asks a knowledge-base question
twice and is then replaced (the bot hands off after three unresolved answers).

Configurations, in this order: two Rasa instances at 16 and 64 customers, then rasa2 stopped (nginx sends
everything to rasa1) at 16 and 64. For each: warm-up, then `--rounds` rounds of `--messages`; throughput is the
median round, p50/p95 pooled. CPU: psutil's user+system time of every process of the cluster (each service's
process tree, reaped children included, PostgreSQL's postmaster and backends), before and after each round,
divided by the messages answered. "deployment" sums what a real installation runs (Rasa, action servers, inbox
web, consumers, PostgreSQL, Redis, RabbitMQ, nginx); the sandbox (Meta) and this load generator are reported
apart. Sizing: msg/s per core = 1000 / deployment CPU ms per message; cores for R msg/s = R x CPU per message.

The production proxy allows 50 webhooks/s and 64 connections per client address: Meta sends from many addresses,
this benchmark from 127.0.0.1 only, so the benchmark raises those two limits in its own copy of the rendered
nginx.conf (and says so in the report); everything else is the cluster profile as shipped.

    .venv/bin/python bench/capacity_benchmark.py                       # full run, ~6-10 minutes
    .venv/bin/python bench/capacity_benchmark.py --messages 64 --rounds 1 --concurrency 16 --instances 2   # smoke

Writes bench/results/capacity.png (the plot) and bench/out/capacity.json; prints the tables.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import aiohttp  # noqa: E402
import psutil  # noqa: E402
import whatsapp_latency  # noqa: E402
from whatsapp_latency import Channels, Services, combine_rounds, concurrent, summary_ms  # noqa: E402

from tests.cluster.harness import ClusterSystem  # noqa: E402

# 64 customers queue behind one instance's 8 concurrent customers (WHATSAPP_MAX_CONCURRENT_CUSTOMERS): a reply may
# take longer than whatsapp_latency's 20 s; a late reply would otherwise be counted as the next turn's answer.
whatsapp_latency.REPLY_TIMEOUT_SECONDS = 180
TARGETS = {"throughput_two_instances_16": 40.0, "cpu_ms_per_message": 35.0}
# Process groups of the report: service name in the cluster harness -> group.
GROUPS = {"rasa1": "Rasa", "rasa2": "Rasa", "actions1": "action servers", "actions2": "action servers",
          "inbox1": "inbox web", "inbox2": "inbox web", "consumer1": "inbox consumers",
          "consumer2": "inbox consumers", "postgresql": "PostgreSQL", "redis": "Redis", "rabbitmq": "RabbitMQ",
          "lb": "nginx", "sandbox": "sandbox (Meta)", "load generator": "load generator"}
RIG = ("sandbox (Meta)", "load generator")  # not part of an installation


def tree_cpu_seconds(pid: int) -> float:
    """User + system seconds of a process, its live descendants and the children they have reaped."""
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class ClusterServices(Services):
    """whatsapp_latency's Services pointed at the load balancer, with CPU per process of the whole cluster."""

    def __init__(self, cluster: ClusterSystem) -> None:
        super().__init__(cluster.url("lb"), cluster.url("sandbox"), cluster.env["WHATSAPP_APP_SECRET"],
                         cluster.env["WHATSAPP_PHONE_NUMBER_ID"], description="cluster profile behind nginx")
        self.cluster = cluster

    def cpu_seconds(self) -> Dict[str, float]:
        own = psutil.Process().cpu_times()  # this process only: the services are its children
        used = {"load generator": own.user + own.system}
        for name, service in self.cluster.services.items():
            if service.running:
                used[name] = tree_cpu_seconds(service.process.pid)
        postmaster = int((self.cluster.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        used["postgresql"] = tree_cpu_seconds(postmaster)
        return used

    def stop(self) -> None:  # the cluster is stopped by main()
        return None


def lift_per_address_limits(cluster: ClusterSystem) -> None:
    """All webhooks come from 127.0.0.1 here (Meta uses many addresses): the per-address rate and connection limits
    of the production proxy would measure the limiter. Raised in this run's nginx.conf, then nginx reloads."""
    conf = Path(cluster.env["PROXY_RUN_DIR"]) / "nginx.conf"
    text = conf.read_text()
    text, rates = re.subn(r"zone=webhook:10m rate=\d+r/s", "zone=webhook:10m rate=100000r/s", text)
    text, conns = re.subn(r"limit_conn per_ip \d+;", "limit_conn per_ip 4096;", text)
    if not (rates and conns):
        raise SystemExit("deploy/nginx/nginx.conf.template changed: webhook rate / per_ip limits not found")
    conf.write_text(text)
    os.kill(cluster.services["lb"].process.pid, signal.SIGHUP)  # nginx master: re-read the configuration
    time.sleep(1)  # the new workers take over; the old ones finish their requests


class LoadSampler:
    """The machine's 1-minute load average every 5 s while a configuration runs (other work shares the cores)."""

    def __init__(self) -> None:
        self.samples: List[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(5)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def grouped(cpu_ms: Dict[str, float]) -> Dict[str, float]:
    groups: Dict[str, float] = {}
    for name, value in cpu_ms.items():
        group = GROUPS.get(name, name)
        groups[group] = groups.get(group, 0.0) + value
    return groups


async def measure_configuration(services: ClusterServices, args: argparse.Namespace, instances: int,
                                customers: int, tag: str) -> Dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=4 * customers)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        channels = Channels(session, services, {})
        await concurrent(channels, "whatsapp", args.question, max(args.warmup, customers), customers,
                         args.per_customer, f"{tag}0")
        channels.failures["whatsapp"].clear()
        rounds = []
        with LoadSampler() as load:
            for index in range(args.rounds):
                rounds.append(await concurrent(channels, "whatsapp", args.question, args.messages, customers,
                                               args.per_customer, f"{tag}{index + 1}"))
        combined = combine_rounds(rounds)
    groups = grouped(combined["cpu_ms_per_message"])
    deployment = sum(value for group, value in groups.items() if group not in RIG)
    return {
        "instances": instances, "customers": customers, "messages": combined["messages"],
        "throughput_msg_s": combined["throughput"], "round_throughputs_msg_s": combined["round_throughputs"],
        **{key: value for key, value in summary_ms(combined["latencies"]).items() if key != "n"},
        "no_reply": len(channels.failures["whatsapp"]),
        "cpu_ms_per_message": {"by_process": combined["cpu_ms_per_message"], "by_group": groups,
                               "deployment": deployment, "with_rig": sum(groups.values())},
        "load_average": {"min": min(load.samples), "max": max(load.samples),
                         "mean": statistics.fmean(load.samples)},
    }


def idle_cores(services: ClusterServices, seconds: float) -> Dict[str, float]:
    """CPU the cluster uses with no traffic (claim sweeps, consumers, RabbitMQ, ...), in cores, by group."""
    before = services.cpu_seconds()
    time.sleep(seconds)
    after = services.cpu_seconds()
    return grouped({name: (after[name] - before[name]) / seconds for name in after if name in before})


def sizing(cpu_ms: float) -> Dict[str, float]:
    return {"msg_s_per_core": 1000.0 / cpu_ms, "cores_100": 100 * cpu_ms / 1000, "cores_1000": 1000 * cpu_ms / 1000}


def report(results: List[Dict[str, Any]], args: argparse.Namespace, idle: Dict[int, Dict[str, float]]) -> str:
    lines = [
        "Capacity of the cluster profile (WhatsApp webhooks through nginx, replies at the sandbox)",
        f"  machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
        f"question {args.question!r}, {args.per_customer} per customer; {args.rounds} round(s) of {args.messages} "
        f"messages per configuration (throughput: median round)",
        "  per-address limits of the proxy raised for this run (all load comes from 127.0.0.1)",
        "",
        f"  {'instances':>9} {'customers':>9} {'msg/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'CPU ms/msg':>10} "
        f"{'+rig':>6} {'msg/s/core':>10} {'cores@100':>9} {'cores@1000':>10} {'load avg':>11} {'no reply':>8}",
    ]
    for r in results:
        cpu = r["cpu_ms_per_message"]
        size = sizing(cpu["deployment"])
        lines.append(
            f"  {r['instances']:>9} {r['customers']:>9} {r['throughput_msg_s']:7.1f} {r['p50_ms']:7.0f} "
            f"{r['p95_ms']:7.0f} {cpu['deployment']:10.1f} {cpu['with_rig']:6.1f} {size['msg_s_per_core']:10.1f} "
            f"{size['cores_100']:9.1f} {size['cores_1000']:10.1f} "
            f"{r['load_average']['min']:5.1f}-{r['load_average']['max']:<5.1f} {r['no_reply']:8}")
    lines += ["", "  CPU ms per message by process group (deployment, then the test rig):"]
    groups = sorted({g for r in results for g in r["cpu_ms_per_message"]["by_group"]},
                    key=lambda g: (g in RIG, -max(r["cpu_ms_per_message"]["by_group"].get(g, 0) for r in results)))
    lines.append("  " + f"{'':18}" + "".join(f"{r['instances']}x@{r['customers']:<6}" for r in results))
    for group in groups:
        lines.append("  " + f"{group:18}" + "".join(
            f"{r['cpu_ms_per_message']['by_group'].get(group, 0.0):<10.1f}" for r in results))
    for count, groups_idle in idle.items():
        deployment_idle = sum(v for g, v in groups_idle.items() if g not in RIG)
        top = ", ".join(f"{g} {v:.2f}" for g, v in sorted(groups_idle.items(), key=lambda item: -item[1])[:4])
        lines.append(f"  idle, {count} instance(s): {deployment_idle:.2f} cores with no traffic ({top}); "
                     f"included in the CPU per message above")
    two16 = next((r for r in results if r["instances"] == 2 and r["customers"] == 16), None)
    if two16:
        lines += ["",
                  f"  [{'met' if two16['throughput_msg_s'] >= TARGETS['throughput_two_instances_16'] else 'MISSED'}] "
                  f"two instances >= 40 msg/s at 16 customers: {two16['throughput_msg_s']:.1f}",
                  f"  [{'met' if two16['cpu_ms_per_message']['deployment'] <= TARGETS['cpu_ms_per_message'] else 'MISSED'}]"
                  f" CPU per message, all deployment processes, <= 35 ms: {two16['cpu_ms_per_message']['deployment']:.1f}"
                  f" ({two16['cpu_ms_per_message']['with_rig']:.1f} with the sandbox and the load generator)"]
    return "\n".join(lines)


def markdown(results: List[Dict[str, Any]], idle: Dict[int, Dict[str, float]]) -> str:
    """The capacity and CPU tables for bench/README_cluster.md."""
    lines = ["| Rasa instances | customers | msg/s (rounds) | p50 / p95 ms | CPU ms/msg, deployment (+ sandbox, load "
             "generator) | msg/s per core | cores for 100 / 1,000 msg/s | load average during the run |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        cpu, size = r["cpu_ms_per_message"], sizing(r["cpu_ms_per_message"]["deployment"])
        rounds = ", ".join(f"{value:.1f}" for value in r["round_throughputs_msg_s"])
        lines.append(f"| {r['instances']} | {r['customers']} | **{r['throughput_msg_s']:.1f}** ({rounds}) | "
                     f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} | **{cpu['deployment']:.1f}** ({cpu['with_rig']:.1f}) | "
                     f"{size['msg_s_per_core']:.1f} | {size['cores_100']:.1f} / {size['cores_1000']:.0f} | "
                     f"{r['load_average']['min']:.2f}–{r['load_average']['max']:.2f} |")
    groups = sorted({g for r in results for g in r["cpu_ms_per_message"]["by_group"]},
                    key=lambda g: (g in RIG, -results[0]["cpu_ms_per_message"]["by_group"].get(g, 0)))
    lines += ["", "| CPU ms per message | " + " | ".join(f"{r['instances']} × Rasa, {r['customers']}" for r in results)
              + " |", "| --- |" + " --- |" * len(results)]
    for group in groups:
        lines.append(f"| {group} | " + " | ".join(
            f"{r['cpu_ms_per_message']['by_group'].get(group, 0.0):.1f}" for r in results) + " |")
    for count, groups_idle in idle.items():
        lines.append(f"| idle, {count} instance(s) (cores) | "
                     f"{sum(v for g, v in groups_idle.items() if g not in RIG):.2f} |" + " |" * (len(results) - 1))
    return "\n".join(lines)


def plot(results: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['instances']} Rasa\n{r['customers']} customers" for r in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    x = range(len(results))
    bars = left.bar(x, [r["throughput_msg_s"] for r in results], color="#4c72b0")
    left.bar_label(bars, fmt="%.1f")
    left.axhline(TARGETS["throughput_two_instances_16"], color="#c44e52", linestyle="--", linewidth=1)
    left.set_xticks(list(x), labels)
    left.set_ylabel("messages per second")
    latency = left.twinx()
    latency.plot(list(x), [r["p95_ms"] for r in results], "o-", color="#dd8452", label="p95 latency")
    latency.set_ylabel("p95 latency (ms)")
    latency.set_ylim(bottom=0)
    latency.legend(loc="upper left")
    left.set_title("Throughput (bars; dashed: 40 msg/s target) and p95")
    groups = sorted({g for r in results for g in r["cpu_ms_per_message"]["by_group"]},
                    key=lambda g: (g in RIG, -results[0]["cpu_ms_per_message"]["by_group"].get(g, 0)))
    bottom = [0.0] * len(results)
    for group in groups:
        values = [r["cpu_ms_per_message"]["by_group"].get(group, 0.0) for r in results]
        right.bar(x, values, bottom=bottom, label=group, hatch="//" if group in RIG else None)
        bottom = [b + v for b, v in zip(bottom, values)]
    right.axhline(TARGETS["cpu_ms_per_message"], color="#c44e52", linestyle="--", linewidth=1)
    right.set_xticks(list(x), labels)
    right.set_ylabel("CPU ms per message")
    right.set_title("CPU per message by process (hatched: test rig; dashed: 35 ms)")
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--question", default="what is your return policy?")
    parser.add_argument("--instances", default="2,1", help="Rasa instances, in order (2 before 1: no restart)")
    parser.add_argument("--concurrency", default="16,64", help="concurrent customers")
    parser.add_argument("--messages", type=int, default=640, help="messages per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--per-customer", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10, help="CPU of the idle cluster measured this long")
    parser.add_argument("--plot", default=str(ROOT / "bench" / "results" / "capacity.png"))
    parser.add_argument("--json-out", default=str(ROOT / "bench" / "out" / "capacity.json"))
    args = parser.parse_args()
    instances = [int(value) for value in args.instances.split(",")]
    concurrency = [int(value) for value in args.concurrency.split(",")]
    if sorted(instances, reverse=True) != instances or not set(instances) <= {1, 2}:
        raise SystemExit("--instances: 2 and/or 1, two first (stopping rasa2 is cheap, starting it is not)")

    data_dir = Path(tempfile.mkdtemp(prefix="capacity-bench."))
    cluster = ClusterSystem.configure(data_dir)
    print(f"Starting the cluster profile (logs in {data_dir}), load average {os.getloadavg()[0]:.2f}", flush=True)
    results: List[Dict[str, Any]] = []
    idle: Dict[int, Dict[str, float]] = {}
    try:
        cluster.start_all()
        lift_per_address_limits(cluster)
        services = ClusterServices(cluster)
        try:
            import uvloop  # the load generator shares the cores with what it measures: keep it cheap

            uvloop.install()
        except ImportError:
            pass
        tag = f"{int(time.time()) % 1000:03d}"
        for count in instances:
            if count == 1:
                cluster.services["rasa2"].stop()  # SIGTERM: it gives its claimed messages back
            idle[count] = idle_cores(services, args.idle_seconds)
            print(f"  {count} instance(s) idle: {sum(v for g, v in idle[count].items() if g not in RIG):.2f} cores",
                  flush=True)
            for index, customers in enumerate(concurrency):
                print(f"  {count} instance(s), {customers} customers: load average {os.getloadavg()[0]:.2f}",
                      flush=True)
                result = asyncio.run(measure_configuration(services, args, count, customers,
                                                           f"{tag}{count}{index}"))
                print(f"    {result['throughput_msg_s']:.1f} msg/s (rounds {result['round_throughputs_msg_s']}), "
                      f"p95 {result['p95_ms']:.0f} ms, CPU {result['cpu_ms_per_message']['deployment']:.1f} ms/msg",
                      flush=True)
                results.append(result)
    finally:
        cluster.stop_all()
    out = Path(args.json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "idle_cores": idle}, indent=2))  # kept if a report step fails
    text = report(results, args, idle)
    print()
    print(text)
    table = markdown(results, idle)
    print("\n" + table)
    plot(results, Path(args.plot))
    out.write_text(json.dumps({"results": results, "idle_cores": idle, "report": text, "markdown": table,
                               "args": vars(args),
                               "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}, indent=2))
    print(f"\n  plot: {args.plot}\n  JSON: {out}\n  cluster logs: {data_dir}")


if __name__ == "__main__":
    main()
