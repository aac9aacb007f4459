"""Media for signed-in agents: the files customers sent, a failed download's "Try again", and the
composer's photo/PDF attachment.

A file is served inline only when its sniffed type is one a browser shows without executing anything
(services/media.INLINE_TYPES); SVG, HTML, XML, PDF and unknown bytes are attachments. Every answer
carries `X-Content-Type-Options: nosniff` and a CSP sandbox, so even a file opened directly in a tab
cannot run script or reach the inbox's origin.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse

from inbox.models import Agent, MediaFile, Message
from inbox.services.media import AttachmentError, inline_allowed, retry_now, send_attachment, storage_for
from inbox.services.media_storage import MediaMissing
from inbox.services.replies import ReplyError
from inbox.web.auth import current_agent, inbox_of

# The composer's attachment form: a PDF up to 16 MiB (WhatsApp takes documents up to 100 MB, but
# the one `serve` process holds the upload in memory) plus the form fields.
UPLOAD_LIMIT_BYTES = 16 * 1024 * 1024 + 64 * 1024
MEDIA_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"

logger = logging.getLogger(__name__)
router = APIRouter(max_body_size=UPLOAD_LIMIT_BYTES)
CurrentAgent = Annotated[Agent, Depends(current_agent)]


@router.get("/media/{media_id}")
def media_file(request: Request, agent: CurrentAgent, media_id: int, download: bool = False):
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        media = session.get(MediaFile, media_id)
        if media is None or media.state != "stored" or not media.sha256:
            raise HTTPException(404, "There is no such file (it may not be downloaded yet).")
        session.expunge(media)
    inline = inline_allowed(media) and not download
    filename = media.filename or f"{media.kind}-{media.id}"
    headers = {
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": MEDIA_CSP,
        "Cache-Control": "private, max-age=3600",  # content-addressed: the bytes of an id never change
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    content_type = media.mime if inline else "application/octet-stream"
    storage = storage_for(inbox)
    path = storage.path(media.sha256)
    if path is not None:
        return FileResponse(path, media_type=content_type, headers=headers)
    try:  # S3: streamed through the inbox (services/media_storage.py says why not a presigned URL)
        chunks = storage.stream(media.sha256)
    except MediaMissing:
        logger.warning("media %s: its bytes are missing from the storage", media_id)
        raise HTTPException(404, "This file is recorded but its bytes are missing from the media storage.") from None
    if media.size is not None:
        headers["Content-Length"] = str(media.size)
    return StreamingResponse(chunks, media_type=content_type, headers=headers)


@router.post("/media/{media_id}/retry")
def retry_download(request: Request, agent: CurrentAgent, media_id: int):
    from inbox.web.routes_conversations import _after_action

    inbox = inbox_of(request)
    with inbox.db.read() as session:
        media = session.get(MediaFile, media_id)
        if media is None:
            raise HTTPException(404, "There is no such file.")
        conversation_id = session.get(Message, media.message_id).conversation_id
    retry_now(inbox, media_id)
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/attachment")
async def attach(
    request: Request,
    agent: CurrentAgent,
    conversation_id: int,
    file: Annotated[UploadFile | None, File()] = None,
    caption: Annotated[str, Form()] = "",
):
    from fastapi.concurrency import run_in_threadpool

    from inbox.web.routes_conversations import _after_action

    inbox = inbox_of(request)
    data = await file.read() if file is not None else b""
    filename = file.filename if file is not None else None

    def send():
        try:
            message = send_attachment(inbox, conversation_id, agent, data, filename, caption)
        except (AttachmentError, ReplyError) as error:
            return _after_action(request, agent, conversation_id, str(error), caption)
        if message.delivery_status == "failed":
            return _after_action(request, agent, conversation_id, f"Not delivered: {message.delivery_error}")
        return _after_action(request, agent, conversation_id)

    return await run_in_threadpool(send)
