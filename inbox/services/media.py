"""Media of WhatsApp messages: customers' photos, documents, voice notes, videos, stickers, locations
and contact cards in; agents' photos and PDFs out.

The inbox (not the connector) downloads customers' media: it is the service that stores and serves
them to agents, it already holds the Graph API token for replies, and a download of up to 100 MB must
not hold up the bot's turn inside the Rasa process. The event stream brings the `user` event with
Meta's media id within a second of the webhook; `record_inbound` stores a work item (a `media_files`
row, state `pending`) in the same transaction as the message, and `MediaFetcher` (a thread of `serve`)
downloads it: `GET /<media-id>` → a URL valid for 5 minutes → `GET <url>` with the token. Webhook media
ids expire after 7 days, so a failed download is retried with backoff for a day (`RETRY_DELAYS`) and
then shown as failed — never dropped: the row and its last error stay visible to the agent.

Files are content-addressed (`<media dir>/ab/cd/<sha256>`), checked by sniffing their bytes
(`filetype`), never by Meta's declared type alone. Only types a browser cannot execute are served
inline (`INLINE_TYPES`); everything else is an attachment (web/routes_media.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import filetype
from sqlalchemy import select

from inbox.models import Conversation, MediaFile, Message
from inbox.services.conversation_store import ConversationStore
from inbox.services.media_storage import MediaStorage, build_storage
from inbox.services.periodic import run_periodically

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

logger = logging.getLogger(__name__)

DOWNLOADED_KINDS = frozenset({"image", "audio", "video", "document", "sticker"})
# Types a browser shows without running anything: served inline with their sniffed type. SVG, HTML,
# XML, PDF (a viewer with scripting) and anything unknown are served as attachments.
INLINE_TYPES = frozenset(
    {
        "image/jpeg", "image/png", "image/webp", "image/gif",
        "audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr", "audio/x-wav",
        "video/mp4", "video/3gpp", "video/webm",
    }
)  # fmt: skip
# Meta's limits for what we send (Cloud API "supported media types"): photos JPEG/PNG up to 5 MB,
# documents up to 100 MB. The inbox sends photos and PDFs; the upload form caps documents lower
# (web/routes_media.py UPLOAD_LIMIT_BYTES) because one `serve` process buffers the upload.
OUTBOUND_TYPES = {"image/jpeg": ("image", 5 * 1024 * 1024), "image/png": ("image", 5 * 1024 * 1024),
                  "application/pdf": ("document", 100 * 1024 * 1024)}  # fmt: skip
# Waits between download attempts: quick at first (a blip), then hourly; about a day in all, well
# inside the 7 days Meta keeps a webhook's media id.
RETRY_DELAYS = [timedelta(seconds=s) for s in (2, 10, 30, 120, 600, 1800, *[3600] * 5, *[7200] * 10)]  # 25.7 h
# How long one claimed download may take before another pass may try it again (a crash mid-download).
CLAIM_SECONDS = 300


class MediaError(Exception):
    """A download that failed; `permanent`: retrying cannot help (e.g. the id expired)."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


# --- storage -------------------------------------------------------------------------------------


def storage_for(inbox: Inbox) -> MediaStorage:
    """The inbox's media storage (services/media_storage.py: local disk or S3-compatible), built once."""
    existing = getattr(inbox, "_media_storage", None)
    if existing is None:
        existing = build_storage(inbox.settings)
        inbox._media_storage = existing
    return existing


# --- what the bytes are --------------------------------------------------------------------------


def sniff(data: bytes) -> str:
    """The type the bytes are, by their content. Markup (HTML, SVG, XML) is recognised so it is never
    mistaken for something harmless; anything unrecognised is application/octet-stream."""
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return kind.mime
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        return "image/svg+xml" if b"<svg" in data[:4096].lower() else "application/xml"
    if head.startswith((b"<!doctype html", b"<html", b"<script", b"<")):
        return "text/html"
    return "application/octet-stream"


def inline_allowed(media: MediaFile) -> bool:
    return media.state == "stored" and (media.mime or "") in INLINE_TYPES


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


# --- customers' media from the event stream ------------------------------------------------------


def record_inbound(session, message: Message, event: dict, now: datetime) -> MediaFile | None:
    """The media work item of a customer's `user` event (idempotent: one per message)."""
    whatsapp = (event.get("metadata") or {}).get("whatsapp") or {}
    kind = whatsapp.get("type")
    if kind not in DOWNLOADED_KINDS and kind not in ("location", "contacts"):
        return None
    if session.scalar(select(MediaFile.id).where(MediaFile.message_id == message.id)) is not None:
        return None
    row = MediaFile(message_id=message.id, direction="in", kind=kind, attempts=0, created_at=now, details={})
    if kind in DOWNLOADED_KINDS:
        media = whatsapp.get("media") if isinstance(whatsapp.get("media"), dict) else {}
        row.whatsapp_media_id = _short(media.get("id"), 128)
        row.declared_mime = _short(media.get("mime_type"), 128)
        row.filename = _short(media.get("filename"), 255)
        row.caption = media.get("caption") if isinstance(media.get("caption"), str) else None
        row.details = {flag: True for flag in ("voice", "animated") if media.get(flag) is True}
        if row.whatsapp_media_id:
            row.state, row.next_attempt_at = "pending", now
        else:
            row.state, row.last_error = "failed", "The message carried no media id to download."
    else:
        row.state = "none"
        value = whatsapp.get(kind)
        row.details = {kind: value} if isinstance(value, (dict, list)) else {}
    session.add(row)
    return row


def _short(value, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


@dataclass
class Downloaded:
    data: bytes
    declared_mime: str | None


class MediaFetcher:
    """Downloads customers' media through the Graph API; a work item per file, retried with backoff."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox
        self.storage = storage_for(inbox)

    def run_once(self) -> int:
        due = self._claim_due()
        for media_id in due:
            self._fetch(media_id)
        return len(due)

    def run_forever(self, stop: threading.Event) -> None:
        run_periodically(self.run_once, stop, self.inbox.settings.inbox_media_check_seconds, "media fetcher")

    def _claim_due(self) -> list[int]:
        now = self.inbox.clock()
        due = select(MediaFile.id).where(MediaFile.state.in_(("pending", "retrying")), MediaFile.next_attempt_at <= now)
        with self.inbox.db.read() as session:  # cheap look first: a write would take SQLite's lock 4 times a second
            if session.scalar(due.limit(1)) is None:
                return []
        with self.inbox.db.write() as session:
            rows = list(
                session.scalars(
                    select(MediaFile)
                    .where(MediaFile.state.in_(("pending", "retrying")), MediaFile.next_attempt_at <= now)
                    .order_by(MediaFile.next_attempt_at)
                    .limit(20)
                )
            )
            for row in rows:  # claimed: a second process (or a crash) picks it up only after the claim
                row.attempts += 1
                row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
            return [row.id for row in rows]

    def _fetch(self, media_file_id: int) -> None:
        with self.inbox.db.read() as session:
            row = session.get(MediaFile, media_file_id)
            graph_id, kind = row.whatsapp_media_id, row.kind
        try:
            downloaded = self._download(graph_id)
            data = downloaded.data
            sha256 = hashlib.sha256(data).hexdigest()
            mime = sniff(data)
            self.storage.put(sha256, data, mime)
        except MediaError as error:
            self._failed(media_file_id, error)
            return
        except Exception as error:  # storage full, a bug: keep the work item, say why
            logger.exception("media %s: could not be stored", media_file_id)
            self._failed(media_file_id, MediaError(f"Could not store the file ({type(error).__name__})."))
            return
        with self.inbox.db.write() as session:
            row = session.get(MediaFile, media_file_id)
            row.sha256, row.size, row.mime = sha256, len(data), mime
            row.declared_mime = row.declared_mime or downloaded.declared_mime
            row.state, row.next_attempt_at, row.last_error = "stored", None, None
            if not _consistent(kind, mime):
                row.last_error = (
                    f"WhatsApp said {row.declared_mime or 'nothing'}, the content is {mime}: not shown inline."
                )
            self._touch(session, row)

    def _download(self, graph_id: str) -> Downloaded:
        client = self.inbox.whatsapp
        if not client.access_token:
            raise MediaError("WhatsApp is not configured (WHATSAPP_ACCESS_TOKEN): media cannot be downloaded.")
        limit = self.inbox.settings.inbox_media_max_bytes
        headers = {"Authorization": f"Bearer {client.access_token}"}
        info = self._get(f"{client.base_url.rstrip('/')}/{graph_id}", headers).json()
        url = info.get("url") if isinstance(info, dict) else None
        if not url:
            raise MediaError("WhatsApp gave no download URL for this media.")
        declared_size = info.get("file_size")
        if isinstance(declared_size, int) and declared_size > limit:
            raise MediaError(
                f"The file is {human_size(declared_size)}, over the {human_size(limit)} limit.", permanent=True
            )
        chunks, total = [], 0
        try:
            with client.http.stream("GET", url, headers=headers, timeout=60.0) as response:
                if response.status_code != 200:
                    raise MediaError(
                        f"Download answered HTTP {response.status_code}.",
                        permanent=response.status_code in (401, 403, 404),
                    )
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > limit:  # stop reading: the rest never reaches memory or disk
                        raise MediaError(f"The file is over the {human_size(limit)} limit.", permanent=True)
                    chunks.append(chunk)
        except MediaError:
            raise
        except Exception as error:
            raise MediaError(f"Download failed ({type(error).__name__}).") from error
        return Downloaded(b"".join(chunks), info.get("mime_type"))

    def _get(self, url: str, headers: dict):
        try:
            response = self.inbox.whatsapp.http.get(url, headers=headers)
        except Exception as error:
            raise MediaError(f"Could not reach the WhatsApp API ({type(error).__name__}).") from error
        if response.status_code == 200:
            return response
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        detail = (
            (error.get("error_data") or {}).get("details") or error.get("message") or f"HTTP {response.status_code}"
        )
        # 400/404: the id is unknown or expired (Meta keeps a webhook's media 7 days); retrying cannot help.
        raise MediaError(f"WhatsApp could not find this media: {detail}", permanent=response.status_code in (400, 404))

    def _failed(self, media_file_id: int, error: MediaError) -> None:
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            row = session.get(MediaFile, media_file_id)
            row.last_error = error.reason[:500]
            if error.permanent or row.attempts > len(RETRY_DELAYS):
                row.state, row.next_attempt_at = "failed", None
                logger.warning("media %s failed for good after %s attempts: %s", row.id, row.attempts, error.reason)
            else:
                row.state = "retrying"
                row.next_attempt_at = now + RETRY_DELAYS[row.attempts - 1]
                logger.warning(
                    "media %s: %s; attempt %s in %s",
                    row.id,
                    error.reason,
                    row.attempts + 1,
                    RETRY_DELAYS[row.attempts - 1],
                )
            self._touch(session, row)

    @staticmethod
    def _touch(session, row: MediaFile) -> None:
        message = session.get(Message, row.message_id)
        store = ConversationStore(session)
        store.touch(session.get(Conversation, message.conversation_id))  # live screens refresh the transcript


def _consistent(kind: str, mime: str) -> bool:
    if kind in ("image", "sticker"):
        return mime.startswith("image/") and mime in INLINE_TYPES
    if kind in ("audio", "video"):
        return mime.startswith(kind + "/") or (kind == "audio" and mime in ("video/mp4", "video/webm"))
    return True  # a document may be anything; it is served as an attachment unless inline-safe


def retry_now(inbox: Inbox, media_file_id: int) -> None:
    """The agent's "Try again" on a failed download."""
    with inbox.db.write() as session:
        row = session.get(MediaFile, media_file_id)
        if row is not None and row.direction == "in" and row.state == "failed" and row.whatsapp_media_id:
            row.state, row.next_attempt_at, row.attempts = "retrying", inbox.clock(), 0


def media_for(session, message_ids: list[int]) -> dict[int, MediaFile]:
    if not message_ids:
        return {}
    rows = session.scalars(select(MediaFile).where(MediaFile.message_id.in_(message_ids)))
    return {row.message_id: row for row in rows}


# --- agents' attachments -------------------------------------------------------------------------


class AttachmentError(ValueError):
    """The attachment cannot be sent; the message says why (shown to the agent)."""


def send_attachment(inbox: Inbox, conversation_id: int, agent, data: bytes, filename: str | None, caption: str):
    """Stores an agent's photo or PDF and sends it like a text reply: same send key, delivery statuses,
    retries and in-doubt recovery (services/replies.py); the file is uploaded to the Graph API media
    endpoint and sent by id at each attempt."""
    from inbox.services.replies import RETRY_DELAYS as REPLY_RETRY_DELAYS
    from inbox.services.replies import AgentReplies, new_send_key
    from inbox.services.snooze import wake_for_reply

    if not data:
        raise AttachmentError("Choose a photo (JPEG or PNG) or a PDF to send.")
    mime = sniff(data)
    if mime not in OUTBOUND_TYPES:
        raise AttachmentError(f"WhatsApp takes photos as JPEG or PNG and documents here as PDF; this file is {mime}.")
    kind, limit = OUTBOUND_TYPES[mime]
    if len(data) > limit:
        raise AttachmentError(f"WhatsApp takes {kind}s up to {human_size(limit)}; this one is {human_size(len(data))}.")
    caption = (caption or "").strip()
    if len(caption) > 1024:
        raise AttachmentError(f"A caption can have at most 1024 characters (this one has {len(caption)}).")
    safe_name = _safe_filename(filename, mime)
    sha256 = hashlib.sha256(data).hexdigest()
    storage_for(inbox).put(sha256, data, mime)
    now = inbox.clock()
    with inbox.db.write() as session:
        store = ConversationStore(session)
        conversation = store.lock(conversation_id)
        wake_for_reply(inbox, session, conversation, agent, now)
        AgentReplies._check_deliverable(conversation)
        message = store.add_message(
            conversation, "agent", caption or f"[{kind}] {safe_name}", now, agent_id=agent.id,
            delivery_status="sending", send_key=new_send_key(), next_attempt_at=now + REPLY_RETRY_DELAYS[0],
        )  # fmt: skip
        session.flush()
        session.add(
            MediaFile(
                message_id=message.id,
                direction="out",
                kind=kind,
                declared_mime=mime,
                mime=mime,
                filename=safe_name,
                caption=caption or None,
                size=len(data),
                sha256=sha256,
                state="stored",
                attempts=0,
                details={},
                created_at=now,
            )  # fmt: skip
        )
        message_id = message.id
    return AgentReplies(inbox)._deliver(message_id, scheduled=False)


def _safe_filename(name: str | None, mime: str) -> str:
    base = Path(name or "").name.strip()
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '\\/:*?"<>|')[:120]
    extension = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}[mime]
    if not base:
        base = "attachment" + extension
    elif not base.lower().endswith(extension if mime != "image/jpeg" else (".jpg", ".jpeg")):
        base += extension
    return base


def send_claimed(inbox: Inbox, message_id: int, claim: dict) -> str:
    """Sends a claimed reply (replies.AgentReplies._deliver): text, or the message's attachment."""
    with inbox.db.read() as session:
        media = session.scalars(
            select(MediaFile).where(MediaFile.message_id == message_id, MediaFile.direction == "out")
        ).one_or_none()
        if media is not None:
            session.expunge(media)
    if media is None:
        return inbox.whatsapp.send_text(**claim)
    from inbox.services.whatsapp_media import send_media

    address = {key: claim[key] for key in ("to", "recipient") if claim.get(key)}
    return send_media(
        inbox.whatsapp, kind=media.kind, data=storage_for(inbox).read(media.sha256), mime=media.mime,
        filename=media.filename, caption=media.caption, send_key=claim.get("send_key"), **address,
    )  # fmt: skip
