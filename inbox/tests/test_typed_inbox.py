"""Every service that takes the inbox takes the typed `Inbox` (inbox/context.py), not an untyped locator."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing

import inbox.services
from inbox.context import Inbox


def _callables(module):
    for _, value in vars(module).items():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            yield value
        elif inspect.isclass(value):
            yield from (member for member in vars(value).values() if inspect.isfunction(member))


def test_services_take_a_typed_inbox():
    untyped = []
    for info in pkgutil.walk_packages(inbox.services.__path__, "inbox.services."):
        module = importlib.import_module(info.name)
        for function in _callables(module):
            if "inbox" not in inspect.signature(function).parameters:
                continue
            hints = typing.get_type_hints(function, {**vars(module), "Inbox": Inbox})
            if hints.get("inbox") is not Inbox:
                untyped.append(f"{info.name}.{function.__qualname__}")
    assert untyped == []
