"""The action server's /kb endpoints over HTTP, on two real action-server processes (actions/server.py)
serving a temp copy of escalation.yml and the knowledge base: the token is required, the explanation
is the live action's, and each process reloads an edited knowledge base on its own."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from actions.settings import PROJECT_ROOT
from actions.knowledge_base import copy_knowledge_base
from tests.actions.test_kb_live import GIFT_WRAP
from tests.free_ports import free_port

TOKEN = "t" * 40
START_TIMEOUT_SECONDS = 180  # loading the encoder and fitting the KB on a busy 2-core machine
# A bound, not a margin: after an edit both processes fit the knowledge base again at once (~100 s of CPU each since
# session 32's ~10,600 examples) on two cores that the other test worker also uses.
RELOAD_TIMEOUT_SECONDS = 600




def wait_until(condition, what, timeout=START_TIMEOUT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _healthy(url):
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("kb_server")
    shutil.copy(PROJECT_ROOT / "escalation.yml", root / "escalation.yml")
    (root / "data").mkdir()
    copied = copy_knowledge_base(PROJECT_ROOT / "data" / "knowledge_base.yml", root / "data")
    # Without the labelled sets (10,000 examples since session 32): these tests are about two processes reloading
    # and reporting, and without them the two refits of an edit, at once beside other tests, take seconds, not minutes.
    without_sets = re.sub(r"^labelled_sets:\n(?:[ \t]+.*\n)*", "", copied.read_text(encoding="utf-8"), flags=re.M)
    assert not re.search(r"^labelled_sets:", without_sets, flags=re.M)
    copied.write_text(without_sets, encoding="utf-8")
    env = {**os.environ, "ACTION_SERVER_TOKEN": TOKEN, "ESCALATION_SETTINGS": str(root / "escalation.yml"),
           "KB_RELOAD_SECONDS": "0.5", "INBOX_URL": ""}
    processes, urls = [], []
    for dev in (False, True):
        port = free_port()
        command = [sys.executable, "-m", "actions.server", "--port", str(port)] + (["--dev"] if dev else [])
        processes.append(subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=open(root / f"server-{port}.log", "wb")))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes):
            wait_until(lambda: _healthy(url) or process.poll() is not None, f"action server {url}")
            assert process.poll() is None, (root / f"server-{url.rsplit(':', 1)[1]}.log").read_text()
        yield {"root": root, "production": urls[0], "dev": urls[1]}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def explain(url, text, intent="ask_question", token=TOKEN):
    parse = {"intent": {"name": intent, "confidence": 0.93}, "intent_ranking": [{"name": intent, "confidence": 0.93}]}
    headers = {"X-Action-Token": token} if token else {}
    return httpx.post(f"{url}/kb/explain", json={"text": text, "parse": parse}, headers=headers, timeout=30)


@pytest.mark.parametrize("mode", ["production", "dev"])
def test_kb_endpoints_refuse_requests_without_the_token(system, mode):
    assert explain(system[mode], "can i return it", token=None).status_code == 403
    assert explain(system[mode], "can i return it", token="wrong" * 10).status_code == 403
    assert httpx.get(f"{system[mode]}/kb/status", timeout=10).status_code == 403


def test_only_production_mode_also_guards_the_action_webhook(system):
    body = {"next_action": "action_nothing", "tracker": {"sender_id": "x", "events": []}, "domain": {}}
    assert httpx.post(f"{system['production']}/webhook", json=body, timeout=10).status_code == 403
    assert httpx.post(f"{system['dev']}/webhook", json=body, timeout=10).status_code != 403


async def test_explain_over_http_gives_the_served_knowledge_bases_entry_and_score(system):
    from actions.kb_reload import load_knowledge_base

    question = "can i return the kurta i bought"
    served = load_knowledge_base(system["root"] / "data" / "knowledge_base.yml")  # the servers' file (fit cached)
    expected = served.best_match(question)
    answer = explain(system["production"], question)
    assert answer.status_code == 200
    best = answer.json()["matches"][0]
    assert (best["entry_id"], best["score"]) == (expected.entry_id, round(expected.probability, 4))
    assert explain(system["production"], "", token=TOKEN).status_code == 400


def test_each_process_reloads_an_edited_knowledge_base_and_reports_a_broken_one(system):
    kb_path = system["root"] / "data" / "knowledge_base.yml"
    original = kb_path.read_text(encoding="utf-8")
    headers = {"X-Action-Token": TOKEN}

    def status(url):
        return httpx.get(f"{url}/kb/status", headers=headers, timeout=10).json()["knowledge_base"]

    before = {url: status(url) for url in (system["production"], system["dev"])}
    kb_path.write_text(original + GIFT_WRAP, encoding="utf-8")
    for url in before:
        wait_until(lambda: status(url)["version"] != before[url]["version"], f"reload in {url}",
                   timeout=RELOAD_TIMEOUT_SECONDS)
        assert status(url)["entries"] == before[url]["entries"] + 1
        assert explain(url, "do you gift wrap orders?").json()["matches"][0]["entry_id"] == "gift_wrap"
    serving = status(system["production"])["version"]
    broken = original + GIFT_WRAP.replace("title: Gift wrapping", "title: ''")
    kb_path.write_text(broken, encoding="utf-8")
    for url in before:
        wait_until(lambda: status(url)["error"] is not None, f"error reported by {url}")
        now = status(url)
        assert now["version"] == serving and "`title` must be a non-empty string" in now["error"]["message"]
        assert now["error"]["line"] == broken.splitlines().index("  - id: gift_wrap") + 1
        assert explain(url, "do you gift wrap orders?").json()["matches"][0]["entry_id"] == "gift_wrap"


def test_start_up_prints_what_matters_without_third_party_noise(system):
    """Issue 14 item 7: no sanic_cors deprecation notice and no line per registered action at start-up."""
    for log in sorted(system["root"].glob("server-*.log")):
        text = log.read_text(errors="replace")
        assert "Action server on http://127.0.0.1:" in text, text
        assert "knowledge base loaded" in text, text
        assert "DeprecationWarning" not in text, text
        assert "Registered function" not in text, text
