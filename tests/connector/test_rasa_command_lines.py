"""The Rasa command lines the project starts survive any generated secret.

Secrets are `secrets.token_urlsafe`, which starts with "-" about once in 64. Written as two words
(`--jwt-secret $RASA_JWT_SECRET`) such a secret is read as an option and `rasa run` exits ("expected one
argument"); the demo would then fail on every start until var/local.env is deleted."""

from __future__ import annotations

import shlex

import pytest
from rasa.__main__ import create_argument_parser

from tests.e2e.harness import ROOT

SECRET = "-Z2jS0b7aWcX1vLqNfT9eR4uYpHmKdG8iBoA3sE6lC5"  # a token_urlsafe that happens to start with "-"


def rasa_arguments(command: str, env: dict[str, str]) -> list[str]:
    """The words of `command` after the shell's expansion of `env`, from `run` on."""
    expanded = []
    for word in shlex.split(command):
        for name, value in env.items():
            word = word.replace(f"${name}", value)
        expanded.append(word)
    return expanded[expanded.index("run"):]  # what follows `python -m connectors.rasa_start`


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1]
    raise AssertionError(f"no {name} line in the Procfile")


def test_the_demo_procfile_passes_a_secret_that_starts_with_a_dash():
    env = {"RASA_JWT_SECRET": SECRET, "RASA_PORT": "5005", "RASA_ENDPOINTS": "endpoints.yml"}
    parsed = create_argument_parser().parse_args(rasa_arguments(procfile_line("rasa"), env))
    assert parsed.jwt_secret == SECRET


def test_two_words_would_not_have_worked():
    """The check above can fail: the old spelling is refused by Rasa's own parser."""
    with pytest.raises(SystemExit):
        create_argument_parser().parse_args(["run", "--enable-api", "--jwt-secret", SECRET, "--jwt-method", "HS256"])
