"""Where media bytes live: the local disk (one machine) or an S3-compatible bucket (several machines).

Both are content-addressed by SHA-256, so the same photo twice is stored once and the bytes of a key
never change. Files reach agents only through the inbox's own `/media/<id>` route (web/routes_media.py),
also from S3: streamed through the inbox, never a presigned URL. A presigned URL is a bearer link
(anyone holding it for its lifetime gets the file, without signing in, and it lands in browser history
and proxies' logs), and the safe headers (nosniff, the CSP sandbox, `attachment` for anything that
could execute) would then depend on each provider honouring response-header overrides. Streaming costs
the inbox the bandwidth of files of at most 100 MB, read in 1 MiB chunks.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from inbox.settings import Settings

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024


class MediaStorageError(RuntimeError):
    """The storage is misconfigured or unreachable; the message says what to fix (never a secret)."""


class MediaMissing(MediaStorageError, FileNotFoundError):
    """A stored file's bytes are not in the storage (deleted from the bucket, wrong bucket)."""


class MediaStorage(Protocol):
    """Bytes keyed by their SHA-256 (hex)."""

    def put(self, sha256: str, data: bytes, content_type: str) -> None: ...

    def path(self, sha256: str) -> Path | None:
        """A local file to serve, or None when the backend streams (`stream`)."""

    def read(self, sha256: str) -> bytes: ...

    def stream(self, sha256: str) -> Iterator[bytes]:
        """The bytes in chunks; raises MediaMissing before the first chunk when there is no such file."""


def _checked(sha256: str) -> str:
    if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        raise ValueError("not a sha256 hex digest")
    return sha256


def relative_key(sha256: str) -> str:
    sha256 = _checked(sha256)
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class LocalMediaStorage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _file(self, sha256: str) -> Path:
        return self.root / relative_key(sha256)

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        target = self._file(sha256)
        if target.exists():
            return  # same bytes, same name: nothing to write
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written whole then renamed: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)

    def path(self, sha256: str) -> Path | None:
        target = self._file(sha256)
        return target if target.exists() else None

    def read(self, sha256: str) -> bytes:
        target = self._file(sha256)
        if not target.exists():
            raise MediaMissing(f"The file {sha256[:12]}… is not in {self.root}.")
        return target.read_bytes()

    def stream(self, sha256: str) -> Iterator[bytes]:
        data = self.read(sha256)
        return iter((data,))


class S3MediaStorage:
    """An S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Ceph RGW): object `<prefix>ab/cd/<sha256>`.

    Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
    an instance role); they are never read into the inbox's settings nor logged."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "media/",
        server_side_encryption: str | None = None,
    ):
        import boto3
        from botocore.config import Config

        if not bucket:
            raise MediaStorageError("INBOX_MEDIA_STORAGE=s3 needs INBOX_MEDIA_S3_BUCKET (the bucket's name).")
        session = boto3.session.Session(region_name=region or None)
        if session.get_credentials() is None:
            raise MediaStorageError(
                "INBOX_MEDIA_STORAGE=s3 but no S3 credentials were found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run with an instance role)."
            )
        self.bucket = bucket
        self.prefix = prefix
        self.server_side_encryption = server_side_encryption or None
        # Few quick retries: a media view or a fetch must fail clearly, not hang on a dead endpoint.
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self.client = session.client("s3", endpoint_url=endpoint_url or None, config=config)
        self._errors = self.client.exceptions

    def key(self, sha256: str) -> str:
        return self.prefix + relative_key(sha256)

    def check(self) -> None:
        """At start-up: the bucket exists and these credentials may use it."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            raise MediaStorageError(
                f"S3 bucket {self.bucket!r} cannot be used (HTTP {code}): check INBOX_MEDIA_S3_BUCKET, "
                "INBOX_MEDIA_S3_ENDPOINT and the credentials' permissions."
            ) from None
        except BotoCoreError as error:
            raise MediaStorageError(f"S3 endpoint unreachable ({type(error).__name__}).") from None

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        key = self.key(sha256)
        if self._exists(key):
            return  # same bytes, same key: already stored (a concurrent twin writes identical bytes)
        extra = {"ServerSideEncryption": self.server_side_encryption} if self.server_side_encryption else {}
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra)

    def path(self, sha256: str) -> Path | None:
        return None

    def _get(self, sha256: str):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"]
        except self._errors.NoSuchKey:
            raise MediaMissing(f"The file {sha256[:12]}… is not in S3 bucket {self.bucket!r}.") from None

    def read(self, sha256: str) -> bytes:
        body = self._get(sha256)
        with body:
            return body.read()

    def stream(self, sha256: str) -> Iterator[bytes]:
        body = self._get(sha256)  # before the first chunk: a missing object is a 404, not a cut response

        def chunks() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK_BYTES)

        return chunks()


def build_storage(settings: Settings) -> MediaStorage:
    """The backend INBOX_MEDIA_STORAGE names; an S3 one is checked (bucket reachable) at once."""
    if settings.inbox_media_storage == "s3":
        storage = S3MediaStorage(
            settings.inbox_media_s3_bucket or "",
            endpoint_url=settings.inbox_media_s3_endpoint,
            region=settings.inbox_media_s3_region,
            prefix=settings.inbox_media_s3_prefix,
            server_side_encryption=settings.inbox_media_s3_sse,
        )
        storage.check()
        where = " (custom endpoint)" if settings.inbox_media_s3_endpoint else ""
        logger.info("media storage: S3 bucket %s%s", storage.bucket, where)
        return storage
    return LocalMediaStorage(settings.inbox_media_dir or settings.inbox_var_dir / "media")
