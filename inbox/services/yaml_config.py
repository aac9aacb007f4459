"""Loading a designer-edited YAML file (inbox/config/*.yml) into a pydantic model, with start-up
errors that name the file, the line and the field, so a typo stops the inbox with where to look."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: Path, model: type[Model], error: type[ValueError]) -> Model:
    """`model` validated from the YAML at `path`; anything wrong raises `error` with file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # the node tree: where each value is written
        data = yaml.safe_load(text)
    except OSError as problem:
        raise error(f"{path}: cannot read it: {problem}") from problem
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from problem
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as problem:
        details = "; ".join(
            f"line {_line(root, item['loc'])}: {'.'.join(map(str, item['loc'])) or '(the whole file)'}: {item['msg']}"
            for item in problem.errors()
        )
        raise error(f"{path}: {details}") from problem


def _line(root: yaml.Node | None, loc: tuple) -> int:
    """The line of the deepest part of `loc` written in the file (a missing field: its parent's line)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else 1)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((key, value) for key, value in node.value if getattr(key, "value", None) == str(part)), None)
            if pair is None:
                break
            node, line = pair[1], pair[0].start_mark.line + 1  # the key's line, also for a block value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
