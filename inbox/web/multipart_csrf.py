"""The CSRF check of multipart posts (the composer's photo/PDF form), with or without JavaScript.

asgi-csrf 0.11 (the newest release) reads a token from a header or a url-encoded body, but its
multipart parser fails on python-multipart 0.0.34 (a 500 for every multipart post that lacks the
header, forged or not). This middleware runs in front of it for multipart posts only: it takes the
token from the `X-CSRFToken` header (htmx) or else from the body's first part, which the form puts
first (`csrftoken`), reading at most `PREFIX_LIMIT_BYTES` of the body to find it; the rest of the body
is never buffered here (the route's own size limit still applies). A token that matches the signed
`csrftoken` cookie is passed on as the header, which asgi-csrf accepts; anything else is refused here
with a 403 that says what to do. Other requests go to asgi-csrf untouched.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie

from itsdangerous import BadSignature
from itsdangerous.url_safe import URLSafeSerializer
from python_multipart.multipart import parse_options_header

COOKIE = "csrftoken"
HEADER = b"x-csrftoken"
# The token part is ~150 bytes; a body whose first 64 KiB hold no complete first part is not our form.
PREFIX_LIMIT_BYTES = 64 * 1024
REFUSED = (
    "<!doctype html><title>Not sent</title><h1>Not sent: the form's security token is missing or out of "
    "date</h1><p>Nothing was sent. Reload the conversation and send the file again (this protects you "
    'from other sites posting in your name).</p><p><a href="/conversations">Back to the conversations</a></p>'
)


class MultipartCsrf:
    def __init__(self, app, signing_secret: str, namespace: str = "csrftoken"):
        self.app = app
        self.signer = URLSafeSerializer(signing_secret)
        self.namespace = namespace

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        media_type, options = parse_options_header(headers.get(b"content-type", b""))
        no_cookie = not headers.get(b"cookie")
        bearer = headers.get(b"authorization", b"").startswith(b"Bearer ")
        if media_type != b"multipart/form-data" or no_cookie or bearer:
            return await self.app(scope, receive, send)  # asgi-csrf's own rules (it skips these two cases)
        cookie = self._signed_cookie(headers.get(b"cookie", b""))
        candidate = headers.get(HEADER, b"").decode("latin-1")
        buffered: list[dict] = []
        if not candidate and options.get(b"boundary"):
            candidate, buffered = await _first_field(options[b"boundary"], receive)
        if not cookie or not candidate or not secrets.compare_digest(candidate, cookie):
            return await _refuse(send)
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != HEADER] + [(HEADER, cookie.encode())]

        async def replay():
            return buffered.pop(0) if buffered else await receive()

        return await self.app(scope, replay, send)

    def _signed_cookie(self, raw: bytes) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(raw.decode("latin-1"))
        except Exception:
            return None
        token = jar[COOKIE].value if COOKIE in jar else ""
        try:
            self.signer.loads(token, self.namespace)
        except BadSignature:
            return None
        return token


async def _first_field(boundary: bytes, receive) -> tuple[str, list[dict]]:
    """The value of the body's first part when it is the `csrftoken` field; the messages read so far."""
    delimiter = b"--" + boundary
    messages, body, more = [], b"", True
    while more and len(body) < PREFIX_LIMIT_BYTES:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
        start = body.find(delimiter)
        head_end = body.find(b"\r\n\r\n", start)
        if start == -1 or head_end == -1:
            continue
        value_end = body.find(b"\r\n" + delimiter, head_end + 4)
        if value_end == -1:
            continue
        part_headers = body[start + len(delimiter) : head_end].lower()
        if b'name="csrftoken"' not in part_headers or b"filename=" in part_headers:
            break
        return body[head_end + 4 : value_end].decode("latin-1").strip(), messages
    return "", messages


async def _refuse(send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": REFUSED.encode()})
