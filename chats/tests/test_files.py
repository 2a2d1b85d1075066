"""Uploads for attachments: /chat/files stores a caller's file, shows it to them alone, and
refuses (storing nothing) what is too large, of a type it does not take, or not what it claims."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from chats.models import ChatFile
from chats.tests.conftest import bearer
from nexus.lib.errors import ApiError

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (2, 2)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, kind)
    return buffer.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF that shows `text` in Helvetica, as a word processor would write it."""
    content = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return pdf


def upload(client, name: str, data: bytes, content_type: str = "image/png"):
    return client.post(
        "/chat/files", {"file": SimpleUploadedFile(name, data, content_type=content_type)}, format="multipart"
    )


@pytest.fixture
def media(settings, tmp_path) -> Path:
    """Uploads go to a directory of this test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def alice_headers(alice) -> dict[str, str]:
    return bearer(alice)  # a token is recorded in the database: made here, not in an async test


def stored(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def nothing_stored(media: Path) -> bool:
    return not ChatFile.objects.exists() and stored(media) == []


# --- upload, read, list, delete --------------------------------------------------------------


def test_an_image_is_stored_and_described(alice, alice_client, media):
    response = upload(alice_client, "cat.png", PNG)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "content_type", "size", "created_at"}
    assert (body["name"], body["content_type"], body["size"]) == ("cat.png", "image/png", len(PNG))
    (path,) = stored(media)
    assert path.read_bytes() == PNG
    assert "cat" not in path.name  # stored under a name of Nexus's own, not the user's
    assert ChatFile.objects.get(pk=body["id"]).owner == alice


def test_its_owner_reads_its_metadata(alice_client, media):
    created = upload(alice_client, "cat.png", PNG).json()
    assert alice_client.get(f"/chat/files/{created['id']}").json() == created


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/chat/files/{id}?download=1", "/chat/files/{id}/content"])
async def test_its_owner_downloads_its_bytes_with_its_type(async_client, alice_headers, media, path):
    created = await async_client.post(
        "/chat/files",
        {"file": SimpleUploadedFile("notes.md", b"# Plan\n\n- walk", content_type="text/markdown")},
        headers=alice_headers,
    )
    response = await async_client.get(path.format(id=created.json()["id"]), headers=alice_headers)
    assert response.status_code == 200
    assert b"".join([chunk async for chunk in response.streaming_content]) == b"# Plan\n\n- walk"
    assert response["Content-Type"] == "text/markdown"
    assert response["Content-Disposition"] == 'attachment; filename="notes.md"'
    assert response["Content-Length"] == str(len(b"# Plan\n\n- walk"))


def test_another_user_cannot_read_download_or_delete_it(alice_client, bob_client, media):
    file_id = upload(alice_client, "cat.png", PNG).json()["id"]
    for response in (
        bob_client.get(f"/chat/files/{file_id}"),
        bob_client.get(f"/chat/files/{file_id}/content"),
        bob_client.get(f"/chat/files/{file_id}?download=1"),
        bob_client.delete(f"/chat/files/{file_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert len(stored(media)) == 1


def test_the_list_is_the_callers_files_newest_first_in_pages(alice_client, bob_client, media):
    first = upload(alice_client, "one.png", PNG).json()
    second = upload(alice_client, "two.txt", b"hello", "text/plain").json()
    upload(bob_client, "bobs.png", PNG)
    page = alice_client.get("/chat/files?page_size=1").json()
    assert page["count"] == 2 and page["next"] is not None
    assert page["results"] == [second]
    assert alice_client.get("/chat/files?page=2&page_size=1").json()["results"] == [first]


def test_deleting_a_file_deletes_its_stored_object(alice_client, media, django_capture_on_commit_callbacks):
    file_id = upload(alice_client, "cat.png", PNG).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.delete(f"/chat/files/{file_id}").status_code == 204
    assert nothing_stored(media)
    assert alice_client.get(f"/chat/files/{file_id}").status_code == 404


def test_a_bad_download_flag_is_a_400(alice_client, media):
    file_id = upload(alice_client, "cat.png", PNG).json()["id"]
    response = alice_client.get(f"/chat/files/{file_id}?download=maybe")
    assert response.status_code == 400
    assert "download" in response.json()["error"]["fields"]


# --- names and types ---------------------------------------------------------------------------


def test_a_type_the_client_did_not_know_is_taken_from_the_name(alice_client, media):
    body = upload(alice_client, "notes.md", b"# Notes", "application/octet-stream").json()
    assert body["content_type"] == "text/markdown"


def test_a_name_keeps_no_path(alice_client, media):
    body = upload(alice_client, "../../etc/passwd.txt", b"root", "text/plain").json()
    assert body["name"] == "passwd.txt"
    assert all(path.is_relative_to(media) for path in stored(media))


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("song.pdf", pdf_with_text("Hello"), "application/pdf"),
        ("table.csv", b"a,b\n1,2\n", "text/csv"),
        ("data.json", b'{"a": 1}', "application/json"),
        ("photo.jpg", JPEG, "image/jpeg"),
        ("anim.gif", image_bytes("GIF"), "image/gif"),
        ("pic.webp", image_bytes("WEBP"), "image/webp"),
    ],
)
def test_every_type_it_takes_is_stored(alice_client, media, name, data, content_type):
    response = upload(alice_client, name, data, content_type)
    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == content_type


# --- refusals: nothing is stored ---------------------------------------------------------------


@pytest.mark.parametrize("size", [2_000, 200_000])  # past the limit; past it by more than a body's headers
def test_a_file_over_the_size_limit_is_a_413(alice_client, media, settings, size):
    settings.MAX_UPLOAD_BYTES = 1024
    response = upload(alice_client, "big.txt", b"a" * size, "text/plain")
    assert response.status_code == 413
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("file_too_large", "file")
    assert nothing_stored(media)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("archive.zip", "application/zip"),
        ("setup.exe", "application/octet-stream"),
        ("page.html", "text/html"),
    ],
)
def test_a_type_it_does_not_take_is_a_400(alice_client, media, name, content_type):
    response = upload(alice_client, name, b"MZ\x90\x00", content_type)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_file_type"
    assert nothing_stored(media)


def test_a_type_the_operator_turned_off_is_a_400(alice_client, media, settings):
    settings.UPLOAD_TYPES = ["image/png"]
    response = upload(alice_client, "notes.txt", b"hello", "text/plain")
    assert response.json()["error"]["code"] == "unsupported_file_type"
    assert nothing_stored(media)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"not an image at all", "image/png"),
        (PNG[:40], "image/png"),  # a PNG cut short
        (JPEG, "image/png"),  # an image, of another format than claimed
        (PNG, "image/webp"),
    ],
)
def test_an_image_that_is_not_what_it_claims_is_a_400(alice_client, media, data, content_type):
    response = upload(alice_client, "cat.png", data, content_type)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image"
    assert nothing_stored(media)


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("report.pdf", b"%PDF-1.4 but then nothing", "application/pdf"),
        ("report.pdf", b"plain words", "application/pdf"),
        ("notes.txt", "caf\u00e9".encode("latin-1"), "text/plain"),
    ],
)
def test_a_document_that_is_not_what_it_claims_is_a_400(alice_client, media, name, data, content_type):
    response = upload(alice_client, name, data, content_type)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_file"
    assert nothing_stored(media)


def test_uploads_past_a_users_total_are_a_413_and_other_users_are_not_affected(
    alice_client, bob_client, media, settings
):
    settings.MAX_USER_FILES_BYTES = len(PNG) * 3 // 2
    assert upload(alice_client, "one.png", PNG).status_code == 201
    response = upload(alice_client, "two.png", PNG)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_storage_full"
    assert ChatFile.objects.count() == 1 and len(stored(media)) == 1
    assert upload(bob_client, "bobs.png", PNG).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_uploads_at_once_cannot_both_pass_a_users_total(alice, media, settings):
    from django.db import connection

    from chats.files import file_create

    settings.MAX_USER_FILES_BYTES = len(PNG) * 3 // 2
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def race() -> None:
        barrier.wait()
        try:
            file_create(user=alice, upload=SimpleUploadedFile("cat.png", PNG, content_type="image/png"))
            outcomes.append("stored")
        except ApiError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["file_storage_full", "stored"]
    assert ChatFile.objects.count() == 1 and len(stored(media)) == 1


def test_an_upload_without_a_file_is_a_400_naming_the_field(alice_client, media):
    response = alice_client.post("/chat/files", {"name": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_an_empty_file_is_a_400(alice_client, media):
    assert upload(alice_client, "empty.txt", b"", "text/plain").status_code == 400
    assert nothing_stored(media)


def test_a_json_body_is_a_415(alice_client, media):
    response = alice_client.post("/chat/files", {"file": "aGVsbG8="}, format="json")
    assert response.status_code == 415


def test_uploading_needs_credentials(api_client, media):
    assert upload(api_client, "cat.png", PNG).status_code == 401


# --- a real server, a real multipart body ------------------------------------------------------


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_file_goes_up_and_comes_back_through_a_running_server(alice, start_server, tmp_path):
    server = start_server(MEDIA_ROOT=str(tmp_path / "served"))
    data = PNG * 1 + bytes(300_000)  # large enough to leave in several chunks
    with httpx.Client(base_url=server.url, headers=bearer(alice), timeout=10) as client:
        created = client.post("/chat/files", files={"file": ("photo \u00e9t\u00e9.png", PNG, "image/png")})
        assert created.status_code == 201, created.text
        big = client.post("/chat/files", files={"file": ("blank.txt", data[len(PNG) :], "text/plain")})
        assert big.status_code == 201, big.text
        downloaded = client.get(f"/chat/files/{created.json()['id']}/content")
        assert downloaded.content == PNG
        assert downloaded.headers["content-type"] == "image/png"
        assert "filename*=utf-8''photo%20%C3%A9t%C3%A9.png" in downloaded.headers["content-disposition"]
        assert client.get(f"/chat/files/{big.json()['id']}?download=1").content == data[len(PNG) :]


# --- S3-compatible storage ---------------------------------------------------------------------


def _storage_in_a_process(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='nexus.settings'; django.setup();"
        "from django.core.files.storage import storages; s = storages['default'];"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.file_overwrite)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_file_storage_s3_keeps_files_in_the_configured_bucket():
    result = _storage_in_a_process(
        FILE_STORAGE="s3", AWS_STORAGE_BUCKET_NAME="nexus-files", AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "nexus-files", "http://127.0.0.1:9000", "False"]


def test_file_storage_s3_without_a_bucket_stops_the_process_naming_it():
    result = _storage_in_a_process(FILE_STORAGE="s3")
    assert result.returncode != 0
    assert "AWS_STORAGE_BUCKET_NAME" in result.stderr


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_lists_files_shows_them_on_messages_and_deletes_their_objects(
    alice, alice_client, client, media, django_capture_on_commit_callbacks
):
    from accounts.models import User
    from chats.models import Conversation, Message

    file_id = upload(alice_client, "cat.png", PNG).json()["id"]
    conversation = Conversation.objects.create(owner=alice, title="Pets")
    message = Message.objects.create(conversation=conversation, role="user", content="Look")
    message.attachments.set([file_id])
    client.force_login(User.objects.create_superuser("root@example.com", None))

    listing = client.get("/admin/chats/chatfile/", {"owner__id__exact": alice.pk})
    assert listing.status_code == 200 and "cat.png" in listing.content.decode()
    page = client.get(f"/admin/chats/chatfile/{file_id}/change/").content.decode()
    assert f"/admin/chats/message/{message.pk}/change/" in page
    shown = client.get(f"/admin/chats/message/{message.pk}/change/").content.decode()
    assert f"/admin/chats/chatfile/{file_id}/change/" in shown and "cat.png" in shown

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/chats/chatfile/{file_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert nothing_stored(media)
    assert list(message.attachments.all()) == []
