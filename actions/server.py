"""The action server for production: rasa_sdk's own app, bound to 127.0.0.1 and answering only Rasa.

`python -m rasa_sdk` listens on 0.0.0.0 (SANIC_HOST) and runs any tracker anyone posts, with the inbox's bot
token behind it. This launcher serves the same app (rasa_sdk.endpoint.create_app) but:
- binds ACTION_SERVER_HOST (default 127.0.0.1);
- refuses every request except GET /health without the shared secret in the X-Action-Token header
  (ACTION_SERVER_TOKEN; Rasa sends it from deploy/endpoints.production.yml `headers:`), compared in constant time;
- serves POST /kb/explain and GET /kb/status for the inbox (actions/kb_explain.py), token required;
  `--dev` (the local demo's Procfile) requires the token only there, as Rasa's dev endpoints send none;
- caps request bodies (ACTION_SERVER_MAX_BODY_BYTES, default 8 MiB: a whole tracker of a long conversation
  fits many times over; Sanic's own default is 100 MB).

    ACTION_SERVER_TOKEN=... python -m actions.server --port 5055
"""
from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
import warnings

TOKEN_HEADER = "X-Action-Token"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
MIN_TOKEN_LENGTH = 32

logger = logging.getLogger(__name__)


def create_app(
    token: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, actions_package: str = "actions",
    protect_actions: bool = True,
):
    from sanic import response
    from rasa_sdk.endpoint import create_app as create_sdk_app

    # No CORS: only Rasa, server to server, calls this app.
    app = create_sdk_app(actions_package, cors_origins=None)
    app.config.REQUEST_MAX_SIZE = max_body_bytes
    expected = token.encode()

    from actions.kb_explain import routes as kb_routes

    for method, path, handler in kb_routes():  # POST /kb/explain, GET /kb/status (actions/CONTRACT.md)
        app.add_route(handler, path, methods=[method], name=path.strip("/").replace("/", "_"))

    @app.middleware("request")
    async def require_token(request):
        if request.path == "/health" and request.method == "GET":
            return None
        if not protect_actions and not request.path.startswith("/kb/"):
            return None
        given = (request.headers.get(TOKEN_HEADER) or "").encode()
        if not hmac.compare_digest(given, expected):
            logger.warning("Refused an action-server request without the right %s header", TOKEN_HEADER)
            return response.json({"error": "forbidden"}, status=403)
        return None

    return app


def quiet_start_up() -> None:
    """sanic_cors's distutils deprecation notice (two lines at every start) is not ours to fix. Filtered
    after Sanic's import, which puts its own "once" filter for every DeprecationWarning in front."""
    import sanic  # noqa: F401

    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sanic_cors\b")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("ACTION_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTION_SERVER_PORT", "5055")))
    parser.add_argument(
        "--dev", action="store_true",
        help="local demo (Procfile): Rasa's action calls need no token, only the /kb endpoints do",
    )
    args = parser.parse_args(argv)
    token = os.environ.get("ACTION_SERVER_TOKEN", "")
    if len(token) < MIN_TOKEN_LENGTH:
        sys.exit(f"ACTION_SERVER_TOKEN must be set to a random secret of at least {MIN_TOKEN_LENGTH} characters "
                 "(the same value Rasa sends, deploy/endpoints.production.yml).")
    max_body = int(os.environ.get("ACTION_SERVER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

    quiet_start_up()
    from rasa_sdk import utils

    utils.configure_colored_logging("INFO")
    utils.update_sanic_log_level()
    # One line per registered action (nine at every start) buried the lines that matter.
    logging.getLogger("rasa_sdk.executor").setLevel(logging.WARNING)
    app = create_app(token, max_body, protect_actions=not args.dev)
    logger.info("Action server on http://%s:%s (token required%s)", args.host, args.port,
                " for /kb only" if args.dev else "")
    app.run(args.host, args.port, workers=utils.number_of_sanic_workers(), access_log=False)


if __name__ == "__main__":
    main()
