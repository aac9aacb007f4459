"""Media in an S3-compatible bucket (INBOX_MEDIA_STORAGE=s3), against a real S3 API served locally by
moto's server: customers' and agents' files are stored once per content under `media/ab/cd/<sha256>`,
served to signed-in agents through the inbox with the same safe headers, a missing object is a clear
404, and missing credentials or bucket stop start-up with a sentence saying what to set."""

# ruff: noqa: F811 (fixtures of test_media.py, imported, are requested by name)
from __future__ import annotations

import hashlib

import boto3
import pytest
from moto.server import ThreadedMotoServer
from starlette.testclient import TestClient

from inbox.services.media import MediaFetcher, storage_for
from inbox.services.media_storage import MediaStorageError, S3MediaStorage, build_storage
from inbox.tests.test_media import (  # noqa: F401 (fixtures)
    PDF,
    _attach,
    _open_conversation,
    agent_client,
    customer_sends,
    only_media,
    png,
    sandbox,
    stream_user_event,
)

BUCKET = "kesar-lane-media"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup on this machine
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")


@pytest.fixture
def bucket(s3_endpoint, aws_env):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def media_inbox(settings, sandbox, clock, s3_endpoint, bucket):  # the S3 variant
    from inbox.context import Inbox
    from inbox.services import bootstrap

    settings = settings.model_copy(
        update={
            "whatsapp_api_base_url": f"{sandbox}/v21.0",
            "inbox_media_storage": "s3",
            "inbox_media_s3_bucket": BUCKET,
            "inbox_media_s3_endpoint": s3_endpoint,
        }
    )
    instance = Inbox(settings, clock=clock)
    instance.whatsapp.sleep = lambda _seconds: None
    bootstrap.prepare(instance)
    yield instance
    instance.close()


def objects(s3) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def key_of(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"media/{digest[:2]}/{digest[2:4]}/{digest}"


def test_agents_files_are_stored_once_per_content_and_served_through_the_inbox(media_inbox, agent_client, bucket):
    conversation_id = _open_conversation(agent_client)
    photo = png()
    for caption in ("First try", "Same photo again"):
        assert _attach(agent_client, conversation_id, "zip.png", photo, "image/png", caption).status_code == 200
    assert _attach(agent_client, conversation_id, "label.pdf", PDF, "application/pdf").status_code == 200

    assert objects(bucket) == sorted([key_of(photo), key_of(PDF)])  # the same bytes twice: one object
    head = bucket.head_object(Bucket=BUCKET, Key=key_of(photo))
    assert head["ContentType"] == "image/png"
    assert not (media_inbox.settings.inbox_var_dir / "media").exists()  # nothing on the local disk

    photo_id, _, pdf_id = _media_ids(media_inbox)
    served = agent_client.get(f"/media/{photo_id}")
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"].startswith("inline")
    assert "sandbox" in served.headers["content-security-policy"]
    document = agent_client.get(f"/media/{pdf_id}")
    assert document.content == PDF and document.headers["content-disposition"].startswith("attachment")
    assert document.headers["content-type"] == "application/octet-stream"

    signed_out = TestClient(agent_client.app, follow_redirects=False)
    assert signed_out.get(f"/media/{photo_id}", headers={"Accept": "text/html"}).status_code == 303  # to the login


def test_a_customers_photo_is_downloaded_into_the_bucket(media_inbox, broker, sandbox, agent_client, bucket):
    photo = png(6, 5)
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "image", photo, "image/png", caption="Broken zip"))
    assert MediaFetcher(media_inbox).run_once() == 1
    row = only_media(media_inbox)
    assert row.state == "stored" and objects(bucket) == [key_of(photo)]
    assert agent_client.get(f"/media/{row.id}").content == photo


def test_a_file_missing_from_the_bucket_is_a_clear_404(media_inbox, agent_client, bucket):
    conversation_id = _open_conversation(agent_client)
    _attach(agent_client, conversation_id, "label.pdf", PDF, "application/pdf")
    bucket.delete_object(Bucket=BUCKET, Key=key_of(PDF))
    (pdf_id,) = _media_ids(media_inbox)
    answer = agent_client.get(f"/media/{pdf_id}")
    assert answer.status_code == 404
    assert "missing from the media storage" in answer.json()["detail"]


def test_missing_credentials_or_bucket_stop_start_up_with_what_to_set(settings, s3_endpoint, aws_env, monkeypatch):
    s3_settings = settings.model_copy(
        update={"inbox_media_storage": "s3", "inbox_media_s3_bucket": BUCKET, "inbox_media_s3_endpoint": s3_endpoint}
    )
    with pytest.raises(MediaStorageError, match="no such bucket|cannot be used"):
        build_storage(s3_settings)  # credentials fine, the bucket does not exist
    with pytest.raises(MediaStorageError, match="INBOX_MEDIA_S3_BUCKET"):
        S3MediaStorage("", endpoint_url=s3_endpoint)

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(MediaStorageError) as refused:
        build_storage(s3_settings)
    assert "AWS_ACCESS_KEY_ID" in str(refused.value) and "test-secret-key" not in str(refused.value)

    from inbox.context import Inbox
    from inbox.web.app import create_app

    instance = Inbox(s3_settings)
    try:
        app = create_app(instance, run_background_workers=False)
        with pytest.raises(MediaStorageError, match="AWS_SECRET_ACCESS_KEY"), TestClient(app):
            pass  # the app's start-up (lifespan) builds the storage
    finally:
        instance.close()


def _media_ids(inbox) -> list[int]:
    from sqlalchemy import select

    from inbox.models import MediaFile

    with inbox.db.read() as session:
        return list(session.scalars(select(MediaFile.id).order_by(MediaFile.id)))


def test_the_storage_is_built_once_per_inbox(media_inbox):
    assert storage_for(media_inbox) is storage_for(media_inbox)
    assert isinstance(storage_for(media_inbox), S3MediaStorage)
