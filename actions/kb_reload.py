"""Live reload of data/knowledge_base.yml and of escalation.yml's action-side settings, without a restart.

Each action-server process watches its own files (several processes each reload on their own): every
KB_RELOAD_SECONDS (default 2; 0 turns the watcher off) it compares each file's size and modification
time, and on a change its SHA-256. A changed file is validated and, for the knowledge base, embedded
(the embedding cache re-embeds only new or edited texts) and its classifier fitted, while the old
version keeps serving; the finished object then replaces the old one in a single assignment, so an
action sees the old or the new version whole, never half of one. A file that fails validation leaves
the old version serving; the error, with its line when it can be found, is in `status()` (served at
GET /kb/status, actions/CONTRACT.md) until a valid version is saved.

Tests call `LiveFile.check()` themselves instead of waiting for the watcher.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar

import yaml

from actions.knowledge_base import linked_files

logger = logging.getLogger(__name__)

RELOAD_ENV = "KB_RELOAD_SECONDS"
DEFAULT_INTERVAL_SECONDS = 2.0
T = TypeVar("T")
_NEAR_MISSES = re.compile(r"^near_misses:\s*['\"]?([^'\"\s#]+)", re.MULTILINE)
_ENTRY_NUMBER = re.compile(r": entry (\d+)")
_ENTRY_ID = re.compile(r": entry '([a-z0-9_]+)'")
_SETTING_PATH = re.compile(r": ([a-z_]+(?:\.[a-z_]+)*)(?::| must| has)")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def error_line(message: str, text: str) -> Optional[int]:
    """The 1-based line of `text` a validation message points at, when it can be found.

    YAML syntax errors carry their position; schema errors name an entry ("entry 3", "entry 'returns'")
    or a setting ("knowledge_base.answer_threshold"), which is looked up in the file."""
    lines = text.splitlines()
    if _ENTRY_ID.search(message):
        wanted = _ENTRY_ID.search(message).group(1)
        for number, line in enumerate(lines, start=1):
            if re.match(rf"\s*-?\s*id:\s*['\"]?{wanted}['\"]?\s*(#.*)?$", line):
                return number
    if _ENTRY_NUMBER.search(message):
        position = int(_ENTRY_NUMBER.search(message).group(1))
        try:
            node = yaml.compose(text)
            for key, value in node.value:
                if key.value == "entries":
                    return value.value[position - 1].start_mark.line + 1
        except (yaml.YAMLError, AttributeError, IndexError, TypeError):
            return None
    path = _SETTING_PATH.search(message)
    if path:
        return _key_line(lines, path.group(1).split("."))
    return None


def _yaml_line(error: BaseException) -> Optional[int]:
    """The line of a YAML syntax error (the loaders wrap yaml's error, which knows its position)."""
    while error is not None:
        mark = getattr(error, "problem_mark", None)
        if mark is not None:
            return mark.line + 1
        error = error.__cause__
    return None


def _key_line(lines: List[str], keys: List[str]) -> Optional[int]:
    """The line of a nested key (`knowledge_base.answer_threshold`): each key searched after the last."""
    start, found = 0, None
    for key in keys:
        for number in range(start, len(lines)):
            if re.match(rf"\s*{re.escape(key)}:", lines[number]):
                start, found = number + 1, number + 1
                break
        else:
            return found
    return found


@dataclass(frozen=True)
class LoadError:
    message: str
    line: Optional[int]
    digest: str
    seen_at: str

    def as_json(self) -> Dict[str, Any]:
        return {"message": self.message, "line": self.line, "seen_at": self.seen_at}


@dataclass(frozen=True)
class Loaded(Generic[T]):
    value: T
    digest: str
    loaded_at: str


class LiveFile(Generic[T]):
    """One file's current valid value, re-read by `check()` when the file changed."""

    def __init__(
        self, name: str, path: Callable[[], Path], load: Callable[[Path], T],
        errors: Tuple[type, ...], describe: Callable[[T], Dict[str, Any]] = lambda value: {},
        on_swap: Callable[[T], None] = lambda value: None,
    ):
        self.name = name
        self.path = path  # a function: the KB's path comes from the (reloadable) settings
        self._load = load
        self._errors = errors
        self._describe = describe
        self._on_swap = on_swap
        self._current: Optional[Loaded[T]] = None
        self.error: Optional[LoadError] = None
        self._stamp: Optional[Tuple[Any, ...]] = None
        # The files the file names, by the file's (path, size, mtime): parsing the KB takes ~0.1 s, too much
        # for every check.
        self._linked: Tuple[Any, List[Path]] = (None, [])
        self._lock = threading.Lock()  # one rebuild at a time (watcher and an explicit check)

    def value(self) -> T:
        current = self._current
        if current is None:
            self.check()
            current = self._current
            if current is None:  # the first read failed: nothing valid to serve
                raise RuntimeError(self.error.message if self.error else f"{self.name} not loaded")
        return current.value

    def _watched(self, path: Path) -> List[Path]:
        """The file, plus the near-miss file and labelled sets a knowledge base names (all decide its answers)."""
        watched = [path]
        try:
            info = path.stat()
            key = (str(path), info.st_size, info.st_mtime_ns)
            if key != self._linked[0]:
                self._linked = (key, self._linked_files(path.read_text(encoding="utf-8"), path))
        except OSError:
            return watched
        return watched + self._linked[1]

    @staticmethod
    def _linked_files(text: str, path: Path) -> List[Path]:
        try:
            return linked_files(yaml.safe_load(text), path)
        except yaml.YAMLError:  # the KB itself fails to load; still watch the near-miss file it names
            found = _NEAR_MISSES.search(text)
            return [path.parent / found.group(1)] if found else []

    def _read(self, path: Path) -> Tuple[Tuple[Any, ...], str, str]:
        stamp, digest, text = [], hashlib.sha256(), ""
        for number, watched in enumerate(self._watched(path)):
            try:
                info = watched.stat()
                content = watched.read_bytes()
            except OSError:
                stamp.append((str(watched), None))
                continue
            stamp.append((str(watched), info.st_size, info.st_mtime_ns))
            digest.update(str(watched).encode() + b"\0" + content + b"\0")
            if number == 0:
                text = content.decode("utf-8", errors="replace")
        return tuple(stamp), digest.hexdigest(), text

    def check(self) -> bool:
        """Reload when the file changed; True when a new version was swapped in."""
        with self._lock:
            path = self.path()
            stamp, digest, text = self._read(path)
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            if self._current is not None and digest == self._current.digest:
                self.error = None  # saved back to the serving version
                return False
            if self.error is not None and digest == self.error.digest:
                return False
            try:
                value = self._load(path)
            except self._errors as error:
                message = str(error)
                line = _yaml_line(error) or error_line(message, text)
                self.error = LoadError(message, line, digest, _now())
                serving = "the previous version keeps serving" if self._current else "nothing to serve"
                logger.error("%s not reloaded (%s): %s", self.name, serving, message)
                return False
            self._current = Loaded(value, digest, _now())  # the swap: one assignment
            self._on_swap(value)
            self.error = None
            logger.info("%s loaded from %s", self.name, path)
            return True

    def status(self) -> Dict[str, Any]:
        current = self._current
        return {
            "path": str(self.path()),
            "loaded_at": current.loaded_at if current else None,
            "version": current.digest[:12] if current else None,
            **(self._describe(current.value) if current else {}),
            "error": self.error.as_json() if self.error else None,
        }


class Watcher:
    """Checks live files every `interval` seconds on a daemon thread (one per action-server process)."""

    def __init__(self, files: List[LiveFile], interval: float):
        self.files = files
        self.interval = interval
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self.interval <= 0 or self.thread is not None:
            return
        self.thread = threading.Thread(target=self._run, name="kb-reload", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self.check_all()

    def check_all(self) -> None:
        for live in self.files:
            try:
                live.check()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise; the old version serves
                logger.exception("%s: reload check failed", live.name)


def interval_from_environment() -> float:
    value = os.environ.get(RELOAD_ENV, "").strip()
    try:
        return float(value) if value else DEFAULT_INTERVAL_SECONDS
    except ValueError:
        raise SystemExit(f"{RELOAD_ENV} must be a number of seconds (0: no live reload), got {value!r}")


# --- the action server's two live files ---------------------------------------------------------
def _load_settings(path: Path):
    from actions.settings import load_settings

    return load_settings(path)


def load_knowledge_base(path: Path):
    """The knowledge base at `path` as the action server loads it (scripts/fit_knowledge_base.py loads it the same
    way at set-up, so the fit it caches is the one the server reads)."""
    from actions.knowledge_base import KnowledgeBase
    from actions.settings import settings

    return KnowledgeBase.from_yaml(path, model=settings().kb_model, precision=settings().kb_precision)


def _settings_path() -> Path:
    from actions.settings import _settings_at_start

    return _settings_at_start().source


def _kb_path() -> Path:
    from actions.settings import settings

    return settings().kb_path


def _describe_kb(kb) -> Dict[str, Any]:
    return {"entries": len(kb.entries), "active_entries": len(kb.active_entries)}


def _describe_settings(config) -> Dict[str, Any]:
    return {"answer_threshold": config.kb_answer_threshold, "turn_limit": config.turn_limit}


def _make_live_files() -> Tuple[LiveFile, LiveFile]:
    from actions.knowledge_base import KnowledgeBaseError
    from actions.settings import SettingsError, use_reloaded

    escalation = LiveFile(
        "escalation settings", _settings_path, _load_settings, (SettingsError, OSError),
        _describe_settings, on_swap=use_reloaded,
    )
    knowledge_base = LiveFile(
        "knowledge base", _kb_path, load_knowledge_base, (KnowledgeBaseError, OSError), _describe_kb
    )
    return escalation, knowledge_base


# Settings first: the knowledge base's path and model come from them.
ESCALATION, KNOWLEDGE_BASE = _make_live_files()
WATCHER = Watcher([ESCALATION, KNOWLEDGE_BASE], interval_from_environment())


def status() -> Dict[str, Any]:
    """GET /kb/status: what each process serves and the last validation error (actions/CONTRACT.md)."""
    return {"knowledge_base": KNOWLEDGE_BASE.status(), "escalation_settings": ESCALATION.status(),
            "pid": os.getpid()}
