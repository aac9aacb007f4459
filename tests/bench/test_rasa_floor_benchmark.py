"""bench/rasa_floor_benchmark.py's pure parts: /proc/<pid>/stat parsing, process trees and CPU per message, the
py-spy profile's shares, the report tables and the budget lines. No Rasa, no services."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import rasa_floor_benchmark as floor  # noqa: E402

# A real line's shape: the command name may hold spaces and parentheses.
STAT = ("4242 (rasa (worker) x) S 4200 4242 4200 0 -1 4194560 9000 0 0 0 "
        "1500 250 30 20 20 0 12 0 123456 987654321 40000 18446744073709551615")


def test_parse_stat_reads_fields_after_the_last_parenthesis():
    assert floor.parse_stat(STAT) == (4242, 4200, 1500 + 250, 30 + 20)


def test_parse_stat_of_this_process():
    pid, ppid, own, reaped = floor.parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())
    assert (pid, ppid) == (os.getpid(), os.getppid())
    assert own >= 0 and reaped >= 0


def test_descendants_walks_the_whole_tree_and_nothing_else():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert sorted(floor.descendants(parents, 10)) == [10, 11, 12, 13]
    assert floor.descendants(parents, 21) == [21]


def test_tree_seconds_sums_own_and_reaped_ticks_of_the_tree():
    table = {10: (1, 300), 11: (10, 100), 12: (11, 50), 20: (1, 999)}  # pid -> (ppid, ticks incl. reaped)
    assert floor.tree_seconds(table, 10, ticks_per_second=100) == pytest.approx(4.5)
    assert floor.tree_seconds(table, 99, ticks_per_second=100) == 0.0  # gone: nothing


def test_read_process_table_sees_this_process(tmp_path):
    table = floor.read_process_table()
    assert table[os.getpid()][0] == os.getppid()
    (tmp_path / "123").mkdir()
    (tmp_path / "123" / "stat").write_text(STAT.replace("4242", "123", 1))
    (tmp_path / "124").mkdir()  # ended between listing and reading: no stat file
    (tmp_path / "self").mkdir()
    assert floor.read_process_table(tmp_path) == {123: (4200, 1750 + 50)}


def test_cpu_ms_per_message_per_group_and_totals():
    before = {"Rasa": 10.0, "PostgreSQL": 2.0, "load generator": 1.0, "Redis": 0.5}
    after = {"Rasa": 14.0, "PostgreSQL": 2.4, "load generator": 1.2}  # Redis gone: not reported
    cpu = floor.cpu_ms_per_message(before, after, 400)
    assert cpu == pytest.approx({"Rasa": 10.0, "PostgreSQL": 1.0, "load generator": 0.5})
    assert floor.deployment_ms(cpu) == pytest.approx(11.0)  # the load generator is not part of a deployment
    with pytest.raises(ValueError):
        floor.cpu_ms_per_message(before, after, 0)


def test_percentile():
    assert floor.percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert floor.percentile(list(range(1, 101)), 0.95) == 95
    assert floor.percentile([], 0.5) != floor.percentile([], 0.5)  # nan


LOOP = "_run (asyncio/events.py:80);handle_message (rasa/core/processor.py:120)"
COLLAPSED = "\n".join([
    f"{LOOP};parse_message (rasa/core/processor.py:700);"
    "process (rasa/nlu/classifiers/logistic_regression_classifier.py:90) 6",
    f"{LOOP};save (rasa/core/tracker_store.py:900);_gen_cache_key (sqlalchemy/sql/traversals.py:284) 3",
    "_gen_cache_key (sqlalchemy/sql/traversals.py:284);_gen_cache_key (sqlalchemy/sql/traversals.py:284) 1",
    "iter_errors (jsonschema/validators.py:301);descend (jsonschema/validators.py:305) 2",
    "handle_request (sanic/app.py:900);write (asyncio/streams.py:300) 2",
    "mystery (somewhere.py:1) 1",
    "deepcopy (copy.py:178);deepcopy (copy.py:178) 1",
    "not a sample line",
])

def test_profile_shares_from_collapsed_stacks():
    stacks = floor.parse_collapsed(COLLAPSED)
    assert len(stacks) == 7 and sum(count for _, count in stacks) == 16
    shares = floor.profile_shares(stacks)
    assert shares == pytest.approx({
        "NLU parse (graph: tokenizer, featurizer, classifier)": 6 / 16,
        "tracker store (retrieve/save)": 4 / 16,  # the truncated SQLAlchemy stack too
        "running actions / responses (NLG)": 2 / 16,  # jsonschema: action responses
        "Sanic request / response, HTTP": 2 / 16,  # sanic before asyncio
        "other": 1 / 16,
        "copy.deepcopy, caller beyond py-spy's stack depth": 1 / 16,
    })
    assert list(shares)[0].startswith("NLU")  # largest first
    assert floor.profile_shares([]) == {}


def test_top_leaves_merge_lines_of_one_function():
    stacks = floor.parse_collapsed(COLLAPSED)
    leaves = dict(floor.top_leaves(stacks, limit=3))
    assert leaves["_gen_cache_key (sqlalchemy/sql/traversals.py)"] == pytest.approx(4 / 16)
    assert len(leaves) == 3


def row(config, round_, msg_s, cpu, load=(1.0, 1.5), failures=0):
    return {"config": config, "round": round_, "throughput_msg_s": msg_s, "p50_ms": 40.0, "p95_ms": 90.0,
            "cpu_ms_per_message": cpu, "load_average": load, "failures": failures}


ROWS = [row("a", 1, 320.0, {"Rasa": 3.1, "load generator": 0.3}),
        row("a", 2, 330.0, {"Rasa": 3.2, "load generator": 0.3}),
        row("e", 1, 26.0, {"Rasa": 33.0, "PostgreSQL": 2.0, "Redis": 0.2, "RabbitMQ": 0.5, "action server": 1.0,
                           "load generator": 1.0}, failures=2),
        row("e", 2, 25.0, {"Rasa": 32.0, "PostgreSQL": 2.0, "Redis": 0.2, "RabbitMQ": 0.5, "action server": 1.0,
                           "load generator": 1.0})]


def test_report_has_a_line_per_round_with_totals_and_dashes_for_absent_processes():
    lines = floor.report(ROWS).splitlines()
    assert len(lines) == 5
    a1 = lines[1].split()
    assert a1[:3] == ["a", "1", "320.0"] and a1[5] == "3.1" and a1[6:10] == ["-"] * 4 and a1[10] == "3.1"
    assert lines[3].split()[10] == "36.7" and "2 failed" in lines[3]


def test_markdown_has_a_row_per_configuration_with_both_rounds():
    table = floor.markdown(ROWS, {"a": "bare", "e": "+ action"})
    lines = table.splitlines()
    assert len(lines) == 4
    assert all(line.count("|") == lines[0].count("|") for line in lines)  # well-formed
    assert lines[2].startswith("| a: bare | 320.0 / 330.0 | 3.1 / 3.2 | – |")
    assert "**36.7 / 35.7**" in lines[3]


def test_median_of_and_budget_lines():
    assert floor.median_of(ROWS, "e") == pytest.approx((36.7 + 35.7) / 2)
    assert floor.median_of(ROWS, "a", "Rasa") == pytest.approx(3.15)
    assert floor.median_of(ROWS, "zz") is None
    lines = floor.budget_lines("stack", 34.0, {"load balancer": 0.9})
    assert lines[0] == "  stack: 34.0 + load balancer 0.9 = 34.9 ms CPU per message"
    assert "1.00x (within by 0.1 ms)" in lines[1]
    assert "50 ms per message): 0.70x" in lines[2] and "57.3 msg/s" in lines[2]


def test_the_minimal_project_is_valid_yaml_with_the_pipeline_asked_for(tmp_path):
    floor.write_floor_project(tmp_path)
    config = yaml.safe_load((tmp_path / "config.yml").read_text())
    assert [step["name"] for step in config["pipeline"]] == [
        "WhitespaceTokenizer", "CountVectorsFeaturizer", "LogisticRegressionClassifier"]
    assert [policy["name"] for policy in config["policies"]] == ["RulePolicy"]
    domain = yaml.safe_load((tmp_path / "domain.yml").read_text())
    nlu = yaml.safe_load((tmp_path / "data" / "nlu.yml").read_text())
    assert {item["intent"] for item in nlu["nlu"]} == set(domain["intents"])
    rules = yaml.safe_load((tmp_path / "data" / "rules.yml").read_text())["rules"]
    assert {rule["steps"][1]["action"] for rule in rules} == set(domain["responses"]) | set(domain["actions"])
    compile((tmp_path / "floor_actions" / "actions.py").read_text(), "actions.py", "exec")


def test_endpoints_per_configuration():
    class Postgres:
        port = 5999

    class Rabbit:
        port, user, password = 6000, "kesar", "secret"

    backends = floor.Backends(Path("/tmp"), postgres=Postgres(), redis_port=6001, redis_password="pw",
                              rabbitmq=Rabbit())
    assert yaml.safe_load(floor.endpoints_yaml(floor.CONFIGS["a"], backends, "floor_a", 0)) == {}
    e = yaml.safe_load(floor.endpoints_yaml(floor.CONFIGS["e+"], backends, floor.database_name("e+"), 7000))
    assert e["action_endpoint"]["url"] == "http://127.0.0.1:7000/webhook"
    assert e["tracker_store"]["type"] == "SQL" and e["tracker_store"]["db"] == "floor_e_fast"
    assert e["lock_store"]["type"] == "redis" and e["lock_store"]["port"] == 6001
    assert e["event_broker"]["type"] == "pika" and e["event_broker"]["queues"] == ["floor_events"]
    # e+pg: the same stack with the project's PostgreSQL tracker store, everything else as e+.
    lean = yaml.safe_load(floor.endpoints_yaml(floor.CONFIGS["e+pg"], backends, floor.database_name("e+pg"), 7000))
    assert lean["tracker_store"]["type"] == "connectors.postgres_tracker_store.PostgresTrackerStore"
    assert {key: value for key, value in lean["tracker_store"].items() if key not in ("type", "db")} == {
        key: value for key, value in e["tracker_store"].items() if key not in ("type", "db")}
    assert {key: lean[key] for key in lean if key != "tracker_store"} == {key: e[key] for key in e if key != "tracker_store"}
