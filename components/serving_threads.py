"""One BLAS thread in the serving processes (Rasa server, action server).

A served message makes only tiny matrix products (one sentence against a few hundred rows). With
OpenBLAS's default of one thread per core, every such product wakes the other threads, which then
busy-wait for work that never comes: on our 2-core machine the NLU parse cost 15.6 ms of CPU for
7.8 ms of wall time, and 7.7 ms of CPU with one thread, at the same speed (bench/README_whatsapp.md,
"Where the time goes"). Under load that spinning takes CPU from the other requests and processes.

Only serving limits the threads: training fits on whole matrices, where several threads help.
An operator who sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or MKL_NUM_THREADS keeps their choice;
SERVING_BLAS_THREADS sets the serving limit (default 1).
"""
from __future__ import annotations

import logging
import os
from typing import Optional

logger = logging.getLogger(__name__)

LIMIT_ENV = "SERVING_BLAS_THREADS"
OPERATOR_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads_for_serving() -> Optional[int]:
    """Limits the BLAS thread pools of this process; returns the limit, or None if left alone."""
    chosen = [name for name in OPERATOR_SETTINGS if os.environ.get(name)]
    if chosen:
        logger.debug("BLAS threads left as set by %s", ", ".join(chosen))
        return None
    raw = os.environ.get(LIMIT_ENV, "1").strip()
    try:
        limit = int(raw)
    except ValueError:
        raise ValueError(f"{LIMIT_ENV}={raw!r}: expected a whole number of threads, e.g. 1") from None
    if limit < 1:
        raise ValueError(f"{LIMIT_ENV}={raw!r}: expected at least 1 thread")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=limit, user_api="blas")  # stays in force for the life of the process
    return limit
