"""The inbox's side of contracts/graph_api.yml: an agent's reply is retried exactly when the shared
retry policy says so (the connector's test checks the bot's replies against the same file)."""

from __future__ import annotations

import pytest
import yaml
from whatsapp_cloud.core import answer_result, raise_for_result

from inbox.services.whatsapp import WhatsAppSendError
from inbox.settings import REPO_ROOT

POLICY = yaml.safe_load((REPO_ROOT / "contracts" / "graph_api.yml").read_text())["retry"]


def failure(status: int, code: int | None = None) -> WhatsAppSendError:
    body = {"error": {"code": code, "message": "x"}} if code is not None else {}
    with pytest.raises(WhatsAppSendError) as raised:
        raise_for_result(answer_result(status, body, attempts=1))
    return raised.value


@pytest.mark.parametrize("code", sorted(POLICY["meta_error_codes"]))
def test_every_meta_code_of_the_policy_is_retried(code):
    assert failure(400, code).retryable


@pytest.mark.parametrize("status", [*POLICY["http_statuses"], 500, 503])
def test_the_policys_http_statuses_and_every_5xx_are_retried(status):
    assert POLICY["all_5xx"] and failure(status).retryable


@pytest.mark.parametrize("code", [131047, 100, 190, 132000])
def test_other_refusals_are_not(code):
    assert not failure(400, code).retryable
