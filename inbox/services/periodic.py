"""The loop of the `serve` process's background jobs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


def run_periodically(job: Callable[[], object], stop: threading.Event, every_seconds: float, what: str) -> None:
    """Runs `job` until `stop` is set; a failing run is logged and the next one goes ahead."""
    while not stop.is_set():
        try:
            job()
        except Exception:
            logger.exception("%s failed; retrying", what)
        stop.wait(every_seconds)
