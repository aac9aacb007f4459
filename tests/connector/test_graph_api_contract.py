"""The connector's side of contracts/graph_api.yml: a bot reply is retried exactly when the shared retry
policy says so (inbox/tests/test_graph_api_contract.py checks the inbox's agent replies against the same
file; tests/connector/test_output.py shows the retries against the sandbox)."""
from __future__ import annotations

import pytest
import yaml

from connectors.graph_api import RETRIABLE_HTTP_STATUSES, MetaError
from connectors.handoff_contract import PROJECT_ROOT

POLICY = yaml.safe_load((PROJECT_ROOT / "contracts" / "graph_api.yml").read_text())["retry"]


@pytest.mark.parametrize("code", sorted(POLICY["meta_error_codes"]))
def test_every_meta_code_of_the_policy_is_retried(code):
    assert MetaError.from_response(400, {"error": {"code": code, "message": "x"}}).retriable


@pytest.mark.parametrize("code", [131047, 100, 190, 132000])
def test_other_refusals_are_not(code):
    assert not MetaError.from_response(400, {"error": {"code": code, "message": "x"}}).retriable


def test_the_policys_http_statuses():
    assert RETRIABLE_HTTP_STATUSES == {429} == set(POLICY["http_statuses"]) and POLICY["all_5xx"]
