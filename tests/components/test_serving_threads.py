"""Serving processes run BLAS on one thread (tiny products; extra threads only spin)."""

from __future__ import annotations

import numpy as np  # noqa: F401 - loads OpenBLAS, whose pools the limit applies to
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from components import serving_threads
from components.serving_threads import limit_blas_threads_for_serving


def blas_threads() -> set:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture(autouse=True)
def restore_limits(monkeypatch):
    for name in (*serving_threads.OPERATOR_SETTINGS, serving_threads.LIMIT_ENV):
        monkeypatch.delenv(name, raising=False)
    with threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine, restored afterwards
        yield


def test_serving_uses_one_blas_thread_by_default():
    assert blas_threads() == {2}
    assert limit_blas_threads_for_serving() == 1
    assert blas_threads() == {1}


def test_the_serving_limit_can_be_raised(monkeypatch):
    monkeypatch.setenv("SERVING_BLAS_THREADS", "2")
    assert limit_blas_threads_for_serving() == 2
    assert blas_threads() == {2}


def test_an_operators_own_blas_setting_is_kept(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert limit_blas_threads_for_serving() is None
    assert blas_threads() == {2}


@pytest.mark.parametrize("value", ["one", "0", "-1"])
def test_a_bad_limit_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("SERVING_BLAS_THREADS", value)
    with pytest.raises(ValueError, match="SERVING_BLAS_THREADS"):
        limit_blas_threads_for_serving()
    assert blas_threads() == {2}
