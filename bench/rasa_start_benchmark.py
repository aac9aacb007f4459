"""How long a Rasa instance takes from `rasa run` to answering with its model loaded, with and without the
start-up speed-ups of connectors/rasa_speedups.py (model loading without a traced training step among them).

    .venv/bin/python bench/rasa_start_benchmark.py [--model models/kesar-lane.tar.gz] [--rounds 3]

Starts `python -m connectors.rasa_start run --enable-api` on a free port, alternately with RASA_SPEEDUPS=1 and
RASA_SPEEDUPS=0, and waits until GET /status names the model. Reports wall seconds and the process's CPU seconds
at that moment (user + system, psutil), per round and the median. This is what an operator waits for when an
instance restarts after a crash, and what the test command pays about ten times. Run it on a quiet machine:
wall time on 2 cores moves with whatever else runs (the load average is printed).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.free_ports import free_port  # noqa: E402

TOKEN = "start-benchmark"
CEILING_SECONDS = 600


def one_start(model: Path, speedups: bool, work_dir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from the start of the process until /status reports the model."""
    port = free_port()
    endpoints = work_dir / "endpoints.yml"
    endpoints.write_text("# no action server, tracker store in memory\n")
    credentials = work_dir / "credentials.yml"
    credentials.write_text("rest:\n")
    env = {**os.environ, "RASA_SPEEDUPS": "1" if speedups else "0", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT)}
    log = open(work_dir / f"rasa-{port}.log", "w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.rasa_start", "run", "--enable-api", "--auth-token", TOKEN,
         "--model", str(model), "--endpoints", str(endpoints), "--credentials", str(credentials), "--port", str(port),
         "-i", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = started + CEILING_SECONDS
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Rasa exited with {process.returncode}; see {log.name}")
            try:
                status = requests.get(f"http://127.0.0.1:{port}/status", params={"token": TOKEN}, timeout=2)
                if status.ok and status.json().get("model_id"):
                    wall = time.perf_counter() - started
                    times = psutil.Process(process.pid).cpu_times()
                    return wall, times.user + times.system
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Rasa did not load its model within {CEILING_SECONDS} s; see {log.name}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "kesar-lane.tar.gz"))
    parser.add_argument("--rounds", type=int, default=3, help="starts of each kind, alternating (default 3)")
    args = parser.parse_args()
    model = Path(args.model)
    if not model.exists():
        sys.exit(f"no model at {model}: run `bash scripts/train.sh` first, or pass --model")
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    loads = []
    with tempfile.TemporaryDirectory(prefix="rasa-start-bench-") as work:
        for round_number in range(args.rounds):
            for speedups in ((True, False) if round_number % 2 == 0 else (False, True)):
                loads.append(os.getloadavg()[0])
                wall, cpu = one_start(model, speedups, Path(work))
                results[speedups].append((wall, cpu))
                print(f"round {round_number + 1}, speed-ups {'on ' if speedups else 'off'}: "
                      f"{wall:5.1f} s to a loaded model, {cpu:5.1f} s CPU (load {loads[-1]:.1f})", flush=True)
    print(f"\nRasa start to a loaded model ({model.name}, {args.rounds} rounds each, median; "
          f"load average {min(loads):.1f}-{max(loads):.1f}):")
    for speedups in (False, True):
        walls = [wall for wall, _ in results[speedups]]
        cpus = [cpu for _, cpu in results[speedups]]
        print(f"  speed-ups {'on ' if speedups else 'off'} (RASA_SPEEDUPS={int(speedups)}): "
              f"{statistics.median(walls):5.1f} s wall, {statistics.median(cpus):5.1f} s CPU")


if __name__ == "__main__":
    main()
