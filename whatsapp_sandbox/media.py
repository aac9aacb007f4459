"""Meta's media endpoints, played by the sandbox (issue 15).

- `GET /v21.0/<media-id>` (token required) → `{"url", "mime_type", "sha256", "file_size", "id"}`; the URL
  lives `MEDIA_URL_SECONDS` (5 minutes, like Meta's) and needs the token too.
- `POST /v21.0/<phone-number-id>/media` (multipart `file`, `type`, `messaging_product`) → `{"id"}`,
  checked against Meta's types and sizes (JPEG/PNG ≤ 5 MB, PDF and office documents ≤ 100 MB …).
- For tests and the page: `GET /sandbox/api/media/<id>` (the phone showing a file, no token),
  `POST /sandbox/api/media/<id>/expire` (the id is gone, like a webhook's media id after 7 days),
  `POST /sandbox/api/media-failures {"count": n}` (the next n downloads answer 500).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from aiohttp import web

from whatsapp_sandbox.graph_errors import GraphError

MEDIA_URL_SECONDS = 300.0
MB = 1024 * 1024
# Meta's "supported media types": type -> (message kind, largest size).
UPLOAD_TYPES: Dict[str, Tuple[str, int]] = {
    "image/jpeg": ("image", 5 * MB), "image/png": ("image", 5 * MB), "image/webp": ("sticker", 500 * 1024),
    "audio/aac": ("audio", 16 * MB), "audio/amr": ("audio", 16 * MB), "audio/mpeg": ("audio", 16 * MB),
    "audio/mp4": ("audio", 16 * MB), "audio/ogg": ("audio", 16 * MB),
    "video/mp4": ("video", 16 * MB), "video/3gpp": ("video", 16 * MB),
    "application/pdf": ("document", 100 * MB), "text/plain": ("document", 100 * MB),
    "application/msword": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("document", 100 * MB),
    "application/vnd.ms-excel": ("document", 100 * MB),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("document", 100 * MB),
}  # fmt: skip


@dataclass
class StoredMedia:
    id: str
    data: bytes
    mime_type: str
    filename: Optional[str] = None
    expired: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class MediaStore:
    files: Dict[str, StoredMedia] = field(default_factory=dict)
    urls: Dict[str, Tuple[str, float]] = field(default_factory=dict)  # token -> (media id, expires at)
    download_failures: int = 0
    downloads: int = 0

    def add(self, data: bytes, mime_type: str, filename: Optional[str] = None, media_id: Optional[str] = None) -> StoredMedia:
        stored = StoredMedia(media_id or str(10**15 + secrets.randbelow(9 * 10**15)), data, mime_type, filename)
        self.files[stored.id] = stored
        return stored

    def live(self, media_id: str) -> Optional[StoredMedia]:
        stored = self.files.get(media_id)
        return stored if stored is not None and not stored.expired else None


MEDIA = web.AppKey("media", MediaStore)


def install(app: web.Application, authorised) -> None:
    """`authorised(request)`: None when the request carries the access token, else the error response."""
    app[MEDIA] = MediaStore()
    app["media_authorised"] = authorised
    app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/media", upload)
    app.router.add_get(r"/{version:v\d+\.\d+}/{media_id:\d+}", media_info)
    app.router.add_get("/sandbox/media-download/{token}", download)
    app.router.add_get("/sandbox/api/media/{media_id}", page_view)
    app.router.add_post("/sandbox/api/media/{media_id}/expire", expire)
    app.router.add_post("/sandbox/api/media-failures", add_download_failures)


def _error(error: GraphError) -> web.Response:
    return web.json_response(error.body(), status=error.http_status)


async def media_info(request: web.Request) -> web.Response:
    refused = request.app["media_authorised"](request)
    if refused is not None:
        return refused
    media_id = request.match_info["media_id"]
    stored = request.app[MEDIA].live(media_id)
    if stored is None:
        return _error(GraphError(400, 100, "Unsupported get request",
                                 f"Object with ID '{media_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."))
    token = secrets.token_urlsafe(16)
    request.app[MEDIA].urls[token] = (media_id, time.monotonic() + MEDIA_URL_SECONDS)
    url = f"{request.scheme}://{request.host}/sandbox/media-download/{token}?mid={media_id}"
    return web.json_response({"messaging_product": "whatsapp", "url": url, "mime_type": stored.mime_type,
                              "sha256": stored.sha256, "file_size": len(stored.data), "id": media_id})


async def download(request: web.Request) -> web.Response:
    refused = request.app["media_authorised"](request)
    if refused is not None:
        return refused
    store = request.app[MEDIA]
    store.downloads += 1
    if store.download_failures > 0:
        store.download_failures -= 1
        return web.Response(status=500, text="simulated download failure")
    media_id, expires_at = store.urls.get(request.match_info["token"], (None, 0.0))
    stored = store.live(media_id) if media_id else None
    if stored is None or time.monotonic() > expires_at:
        return web.Response(status=404, text="URL expired or unknown")
    return web.Response(body=stored.data, content_type="application/octet-stream")


async def upload(request: web.Request) -> web.Response:
    refused = request.app["media_authorised"](request)
    if refused is not None:
        return refused
    try:
        form = await request.post()
    except ValueError:
        return _error(GraphError(400, 100, "Invalid parameter", "The upload must be multipart/form-data."))
    upload_file = form.get("file")
    declared = str(form.get("type") or "")
    if form.get("messaging_product") != "whatsapp":
        return _error(GraphError(400, 100, "Invalid parameter", "Param messaging_product must be 'whatsapp'."))
    if not isinstance(upload_file, web.FileField):
        return _error(GraphError(400, 100, "Invalid parameter", "Param file is required."))
    if declared not in UPLOAD_TYPES:
        return _error(GraphError(400, 131053, "Media upload error", f"Unsupported file type {declared[:60]!r}."))
    data = upload_file.file.read()
    kind, limit = UPLOAD_TYPES[declared]
    if len(data) > limit:
        return _error(GraphError(400, 131053, "Media upload error",
                                 f"{kind} files can be at most {limit // 1024} KB; this one is {len(data) // 1024} KB."))
    stored = request.app[MEDIA].add(data, declared, upload_file.filename)
    return web.json_response({"id": stored.id})


def check_media_reference(app: web.Application, message_type: str, payload: dict) -> Optional[GraphError]:
    """A media message sent by id must name an uploaded, unexpired file (Meta: 131053 otherwise)."""
    content = payload.get(message_type) if isinstance(payload.get(message_type), dict) else {}
    media_id = content.get("id")
    if media_id is not None and app[MEDIA].live(str(media_id)) is None:
        return GraphError(400, 131053, "Media upload error", f"Media id {str(media_id)[:40]!r} is not an uploaded file.")
    return None


async def page_view(request: web.Request) -> web.Response:
    stored = request.app[MEDIA].files.get(request.match_info["media_id"])
    if stored is None:
        return web.Response(status=404, text="no such media")
    # The sandbox page shows JPEG/PNG/WebP inline; anything else downloads (a test may upload hostile bytes).
    inline = stored.mime_type in ("image/jpeg", "image/png", "image/webp", "application/pdf")
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
               "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename=\"{(stored.filename or 'file').replace(chr(34), '')}\""}
    return web.Response(body=stored.data, content_type=stored.mime_type if inline else "application/octet-stream", headers=headers)


async def expire(request: web.Request) -> web.Response:
    stored = request.app[MEDIA].files.get(request.match_info["media_id"])
    if stored is None:
        return web.json_response({"error": "no such media"}, status=404)
    stored.expired = True
    return web.json_response({"expired": stored.id})


async def add_download_failures(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[MEDIA].download_failures += int(body.get("count", 1))
    return web.json_response({"pending": request.app[MEDIA].download_failures})


def customer_media(app: web.Application, media: dict) -> dict:
    """The `image`/`document`/… object of a customer's media message; `data_base64` (the page's file
    picker, tests) is kept so the connector and the inbox can download it like Meta's."""
    mime = str(media.get("mime_type") or "image/jpeg")
    if media.get("data_base64"):
        data = base64.b64decode(str(media["data_base64"]), validate=True)
        stored = app[MEDIA].add(data, mime, media.get("filename"))
        return {"id": stored.id, "mime_type": mime, "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()}
    return {"id": str(10**15 + secrets.randbelow(9 * 10**15)), "mime_type": mime, "sha256": "sandbox"}
