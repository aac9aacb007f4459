"""Approved WhatsApp message templates (inbox/config/templates.yml): loading with line-precise errors,
filling their parameters from a conversation, and the Graph API template message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from inbox.settings import INBOX_DIR

DEFAULT_TEMPLATES_PATH = INBOX_DIR / "config" / "templates.yml"
SOURCES = ("customer_first_name", "order_number", "agent_first_name", "none")
CATEGORIES = ("UTILITY", "MARKETING", "AUTHENTICATION")
NAME = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")
BODY_LIMIT = 1024  # Meta's limit for a template body
# Meta refuses parameter text with new lines, tabs or more than four spaces in a row (132018).
BAD_PARAMETER_TEXT = re.compile(r"[\n\t]| {5,}")
PARAMETER_LIMIT = 200


class TemplateConfigError(ValueError):
    """templates.yml is invalid; the message names the file, line and field."""


class TemplateError(ValueError):
    """A template send cannot go out as asked; the message says why (shown to the agent)."""


@dataclass(frozen=True)
class Parameter:
    source: str
    fallback: str | None = None


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    category: str
    label: str
    body: str
    parameters: tuple[Parameter, ...]

    @property
    def key(self) -> str:
        """How the composer names it: name and language (one name can have several translations)."""
        return f"{self.name}:{self.language}"

    def render(self, values: list[str]) -> str:
        return PLACEHOLDER.sub(lambda match: values[int(match.group(1)) - 1], self.body)

    def graph_payload(self, values: list[str]) -> dict:
        """The Cloud API `template` object: name, language code and the body's text parameters."""
        template: dict = {"name": self.name, "language": {"code": self.language}}
        if values:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": value} for value in values]}
            ]
        return template

    def check_values(self, values: list[str]) -> list[str]:
        values = [value.strip() for value in values]
        if len(values) != len(self.parameters):
            raise TemplateError(f"'{self.label}' needs {len(self.parameters)} values, got {len(values)}.")
        for number, value in enumerate(values, start=1):
            if not value:
                raise TemplateError(f"'{self.label}': fill in {{{{{number}}}}} before sending.")
            if len(value) > PARAMETER_LIMIT or BAD_PARAMETER_TEXT.search(value):
                raise TemplateError(
                    f"'{self.label}': {{{{{number}}}}} must be one line of at most {PARAMETER_LIMIT} characters "
                    "without tabs or runs of spaces (WhatsApp's rule for template parameters)."
                )
        return values


class _Mapping(dict):
    """A YAML mapping that remembers the line it and each of its keys started on."""

    line: int = 0
    key_lines: dict


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {key.value: key.start_mark.line + 1 for key, _ in node.value if hasattr(key, "value")}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_templates(path: Path = DEFAULT_TEMPLATES_PATH) -> dict[str, Template]:
    """Templates by key ('name:language'). Raises TemplateConfigError with the line and field."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 (safe loader)
    except OSError as error:
        raise TemplateConfigError(f"{path}: cannot read the templates file: {error}") from error
    except yaml.YAMLError as error:
        raise TemplateConfigError(f"{path}: not valid YAML: {error}") from error
    entries = data.get("templates") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise TemplateConfigError(f"{path}: expected a top-level 'templates:' list")
    templates: dict[str, Template] = {}
    for index, entry in enumerate(entries, start=1):
        template = _template(path, index, entry)
        if template.key in templates:
            raise TemplateConfigError(
                f"{path} line {entry.line}: template {index}: '{template.name}' in language "
                f"'{template.language}' is defined twice"
            )
        templates[template.key] = template
    return templates


def _template(path: Path, index: int, entry) -> Template:
    if not isinstance(entry, _Mapping):
        raise TemplateConfigError(f"{path}: template {index} must be a mapping (name, language, body, …)")

    def fail(field: str, problem: str):
        line = entry.key_lines.get(field, entry.line)
        name = entry.get("name", "?")
        raise TemplateConfigError(f"{path} line {line}: template {index} ({name}), {field}: {problem}")

    unknown = sorted(set(entry) - {"name", "language", "category", "label", "body", "parameters"})
    if unknown:
        fail(unknown[0], "unknown field (allowed: name, language, category, label, body, parameters)")
    name, language = str(entry.get("name") or ""), str(entry.get("language") or "")
    category, body = str(entry.get("category") or "").upper(), entry.get("body")
    if not NAME.match(name):
        fail("name", f"must be Meta's template name (lowercase letters, digits, underscores), got {name!r}")
    if not LANGUAGE.match(language):
        fail("language", f"must be a language code such as en, en_US or hi, got {language!r}")
    if category not in CATEGORIES:
        fail("category", f"must be one of {', '.join(CATEGORIES)}, got {entry.get('category')!r}")
    if not isinstance(body, str) or not body.strip():
        fail("body", "is required (the approved body text)")
    if len(body) > BODY_LIMIT:
        fail("body", f"is {len(body)} characters; WhatsApp allows {BODY_LIMIT}")
    numbers = sorted({int(number) for number in PLACEHOLDER.findall(body)})
    if numbers != list(range(1, len(numbers) + 1)):
        fail("body", f"parameters must be numbered {{{{1}}}}, {{{{2}}}} … without gaps, found {numbers}")
    raw_parameters = entry.get("parameters") or []
    if not isinstance(raw_parameters, list):
        fail("parameters", "must be a list (one entry per {{n}} of the body)")
    if len(raw_parameters) != len(numbers):
        fail("parameters", f"the body has {len(numbers)} parameter(s) but {len(raw_parameters)} are described")
    parameters = []
    for number, raw in enumerate(raw_parameters, start=1):
        source = raw.get("source") if isinstance(raw, dict) else None
        if source not in SOURCES:
            fail("parameters", f"{{{{{number}}}}}: source must be one of {', '.join(SOURCES)}, got {source!r}")
        fallback = raw.get("fallback")
        parameters.append(Parameter(source=source, fallback=str(fallback) if fallback is not None else None))
    label = str(entry.get("label") or f"{name} ({language})")
    return Template(name, language, category, label, body, tuple(parameters))


def fill_values(template: Template, *, customer_name: str | None, order_numbers, agent_first_name: str) -> list[str]:
    """The parameter values taken from the conversation (the agent may edit them before sending)."""
    facts = {
        "customer_first_name": (customer_name or "").strip().split(" ")[0] or None,
        "order_number": (list(order_numbers or []) or [None])[-1],  # the one mentioned last
        "agent_first_name": agent_first_name or None,
        "none": None,
    }
    return [facts[parameter.source] or parameter.fallback or "" for parameter in template.parameters]
