"""Render the proxy's nginx configuration from deploy/nginx/*.template and the environment.

    python3 deploy/render_proxy.py            # writes $PROXY_RUN_DIR/nginx.conf

Only ${NAME} in capitals is replaced (nginx's own variables are lower-case $names). A name that is not set
stops the render with the list of what is missing. PROXY_TLS=on (default) uses listen-tls.conf.template and
needs PROXY_TLS_CERT and PROXY_TLS_KEY; PROXY_TLS=off uses listen-plain.conf.template.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "nginx"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def substitute(text: str, values: dict[str, str]) -> tuple[str, set[str]]:
    missing = {name for name in PLACEHOLDER.findall(text) if not values.get(name)}
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text), missing


def render(env: dict[str, str]) -> str:
    """The nginx.conf text for `env`; ValueError naming every missing variable."""
    tls = env.get("PROXY_TLS", "on").strip().lower()
    if tls not in ("on", "off"):
        raise ValueError(f"PROXY_TLS must be on or off, not {tls!r}")
    listen, missing_listen = substitute((TEMPLATES / f"listen-{'tls' if tls == 'on' else 'plain'}.conf.template")
                                        .read_text(), env)
    text, missing = substitute((TEMPLATES / "nginx.conf.template").read_text(),
                               {**env, "PROXY_LISTEN_BLOCK": listen.rstrip("\n")})
    missing |= missing_listen
    if missing:
        raise ValueError("The proxy configuration needs these environment variables: " + ", ".join(sorted(missing)))
    return text


def main(render_function=render) -> None:
    """Renders with `render_function` (deploy/cluster/render_lb.py passes its own) and writes nginx.conf."""
    try:
        text = render_function(dict(os.environ))
    except ValueError as error:
        sys.exit(str(error))
    run_dir = Path(os.environ["PROXY_RUN_DIR"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "nginx.conf").write_text(text)
    print(run_dir / "nginx.conf")


if __name__ == "__main__":
    main()
