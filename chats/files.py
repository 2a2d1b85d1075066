"""Uploaded files and the attachments of messages.

A user uploads a file (`POST /chat/files`) and attaches it to messages by id. Files are kept
through Django's storage API (STORAGES["default"]: MEDIA_ROOT, or S3-compatible object storage
with FILE_STORAGE=s3), under a random name: what the user called it is only the row's `name`.

An upload is checked before anything is stored: its size (MAX_UPLOAD_BYTES), its type
(UPLOAD_TYPES), the owner's total (MAX_USER_FILES_BYTES), and that it is what it claims to be:
an image that Pillow reads in the claimed format, a PDF that pypdf opens, text in UTF-8.

In a turn, an image goes to the model as an image part (a base64 data URL of its bytes), a
document as a text part headed by its name (a PDF's extracted text). The attachments of
earlier messages travel with them in the context; for a model that reads no images, an
earlier image becomes a line naming it, and a new one is refused before anything is saved.
Attachments are ordered by file id everywhere, so the same message always reads the same.

    file_create(*, user, upload)          services: an upload checked and stored
    file_delete(*, chat_file)             the row, then (once committed) the stored object
    file_list / file_get                  selectors: the caller's own files only
    turn_files(*, user, target, ids, carried)    the files a new message attaches
    message_parts(*, message, vision)    a message's attachments as content parts
"""

from __future__ import annotations

import base64
import io
import logging
import mimetypes
import uuid
import warnings
from collections.abc import Generator, Iterable, Sequence
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Sum
from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from rest_framework.exceptions import NotFound

from accounts.models import User
from chats.models import ChatFile, Message
from llm.types import ContentPart, ImagePart, ModelTarget, TextPart
from nexus.lib.errors import ApiError

logger = logging.getLogger(__name__)

# The attribute a message's attachments are read into (a list of ChatFile), by `with_attachments`
# or `prefetch_attachments`; a message without it is read as having none.
ATTACHED = "attached_files"

IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
PDF = "application/pdf"
# What clients call these types besides their registered names.
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "text/x-markdown": "text/markdown"}
# Types clients send when they do not know one: the name's extension decides then.
_UNKNOWN = {"", "application/octet-stream", "binary/octet-stream"}
_BY_EXTENSION = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".txt": "text/plain",
}
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
    "application/json": ".json",
    PDF: ".pdf",
}
# Room for a multipart body's boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
_READ_CHUNK = 1024 * 1024


class FileTooLarge(ApiError):
    status_code = 413
    default_code = "file_too_large"


def _invalid(message: str, code: str = "invalid_file") -> ApiError:
    return ApiError(message, code=code, param="file")


# --- services --------------------------------------------------------------------------


def upload_size_check(*, content_length: int) -> None:
    """413 for a body that cannot hold an allowed file, before any of it is parsed."""
    if content_length > settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD:
        raise FileTooLarge(f"The file is larger than {settings.MAX_UPLOAD_BYTES} bytes.", param="file")


def file_create(*, user: User, upload: UploadedFile) -> ChatFile:
    """Checks an upload and stores it as the user's; nothing is stored if any check fails."""
    limit = settings.MAX_UPLOAD_BYTES
    size = int(upload.size or 0)
    if size > limit:
        raise FileTooLarge(f"The file is larger than {limit} bytes.", param="file")
    name = _display_name(upload.name or "")
    content_type = _content_type(upload.content_type or "", name)
    if content_type not in settings.UPLOAD_TYPES:
        raise _invalid(
            f"Files of type {content_type or 'unknown'} cannot be attached: use "
            + ", ".join(settings.UPLOAD_TYPES)
            + ".",
            code="unsupported_file_type",
        )
    _content_check(upload, content_type)
    upload.seek(0)
    _total_check(user=user, size=size)  # before writing: most refusals cost no upload to storage
    chat_file = ChatFile(owner=user, name=name, content_type=content_type, size=size)
    # Written outside the transaction, so that the lock below is not held while object storage
    # takes the bytes; the object is deleted again if the row is not saved.
    chat_file.file.save(f"{uuid.uuid4().hex}{_EXTENSIONS[content_type]}", upload, save=False)
    try:
        with transaction.atomic():
            # Uploads of one user wait for each other here, so two cannot both pass the total.
            list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
            _total_check(user=user, size=size)
            chat_file.save()
    except BaseException:
        chat_file.file.delete(save=False)
        raise
    return chat_file


def _total_check(*, user: User, size: int) -> None:
    used = ChatFile.objects.filter(owner=user).aggregate(total=Sum("size"))["total"] or 0
    if used + size > settings.MAX_USER_FILES_BYTES:
        raise FileTooLarge(
            f"Your files would take more than {settings.MAX_USER_FILES_BYTES} bytes: delete some first.",
            code="file_storage_full",
            param="file",
        )


def file_delete(*, chat_file: ChatFile) -> None:
    """Deletes the row (messages forget the attachment), and its stored object once committed."""
    storage, stored_name = chat_file.file.storage, chat_file.file.name
    with transaction.atomic():
        chat_file.delete()

        def delete_object() -> None:
            try:
                storage.delete(stored_name)
            except Exception:
                # The row is gone; an object left behind costs space, not correctness.
                logger.warning("Could not delete the stored file %s", stored_name, exc_info=True)

        transaction.on_commit(delete_object)


def _display_name(raw: str) -> str:
    """The name as the user gave it, without any path or control characters, at most 255 long."""
    name = "".join(char for char in PurePath(raw.replace("\\", "/")).name if char.isprintable()).strip()
    name = name or "file"
    if len(name) > 255:
        suffix = PurePath(name).suffix[:16]
        name = name[: 255 - len(suffix)] + suffix
    return name


def _content_type(claimed: str, name: str) -> str:
    """The claimed media type, normalized; the name's extension when the client claimed none."""
    content_type = claimed.split(";", 1)[0].strip().lower()
    content_type = _ALIASES.get(content_type, content_type)
    if content_type in _UNKNOWN:
        extension = PurePath(name).suffix.lower()
        content_type = _BY_EXTENSION.get(extension) or mimetypes.guess_type(name)[0] or ""
        content_type = _ALIASES.get(content_type, content_type)
    return content_type


def _content_check(upload: UploadedFile, content_type: str) -> None:
    """400 unless the file is what its type claims."""
    upload.seek(0)
    if content_type in IMAGE_FORMATS:
        _image_check(upload, content_type)
    elif content_type == PDF:
        _pdf_check(upload)
    else:
        try:
            _read_all(upload).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"The file is not {content_type} text in UTF-8.") from None


def _image_check(upload: IO[bytes], content_type: str) -> None:
    expected = IMAGE_FORMATS[content_type]
    try:
        with warnings.catch_warnings():
            # Pillow warns of an image with a huge number of pixels (a decompression bomb).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as image:
                found = image.format
                image.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _invalid(f"The file is not a {expected} image.", code="invalid_image") from None
    except Exception:
        # verify() raises what the damaged part of the file leads to (SyntaxError, OSError, ...).
        raise _invalid(f"The file is not a valid {expected} image.", code="invalid_image") from None
    if found != expected:
        raise _invalid(f"The file is a {found} image, not {expected}.", code="invalid_image")


def _pdf_check(upload: IO[bytes]) -> None:
    if upload.read(5) != b"%PDF-":
        raise _invalid("The file is not a PDF.")
    upload.seek(0)
    try:
        reader = PdfReader(upload)
        if reader.is_encrypted and not reader.decrypt(""):
            raise _invalid("The PDF is encrypted: upload it without a password.")
        len(reader.pages)
    except ApiError:
        raise
    except Exception:
        # pypdf raises many kinds of error on a damaged file; each means the same to the user.
        raise _invalid("The PDF cannot be read.") from None


def _read_all(handle: IO[bytes]) -> bytes:
    return b"".join(iter(lambda: handle.read(_READ_CHUNK), b""))


# --- selectors -------------------------------------------------------------------------


def file_list(*, user: User) -> QuerySet[ChatFile]:
    return ChatFile.objects.filter(owner=user).order_by("-created_at", "-id")


def file_get(*, user: User, file_id: int) -> ChatFile:
    try:
        return ChatFile.objects.get(pk=file_id, owner=user)
    except ChatFile.DoesNotExist:
        raise NotFound("No such file.") from None


def file_chunks(*, chat_file: ChatFile) -> Generator[bytes]:
    """The stored bytes, a chunk at a time; 404 when the stored object is gone."""
    try:
        handle = chat_file.file.storage.open(chat_file.file.name, "rb")
    except OSError:
        raise ApiError(
            "This file's content is no longer stored.", code="file_missing", status_code=404
        ) from None

    def chunks() -> Generator[bytes]:
        with handle:
            yield from iter(lambda: handle.read(_READ_CHUNK), b"")

    return chunks()


def attachments_get(*, user: User, file_ids: Iterable[int]) -> list[ChatFile]:
    """The caller's files of these ids, in id order; 404 naming any that is not theirs."""
    wanted = sorted(set(file_ids))
    if not wanted:
        return []
    if len(wanted) > settings.MAX_ATTACHMENTS:
        raise ApiError(f"Attach at most {settings.MAX_ATTACHMENTS} files.", param="attachments")
    found = list(ChatFile.objects.filter(owner=user, pk__in=wanted).order_by("id"))
    missing = sorted(set(wanted) - {chat_file.pk for chat_file in found})
    if missing:
        raise ApiError(
            f"No such file: {', '.join(map(str, missing))}.",
            code="file_not_found",
            status_code=404,
            param="attachments",
        )
    return found


def turn_files(
    *, user: User, target: ModelTarget, ids: Sequence[int] | None, carried: Message | None = None
) -> list[ChatFile]:
    """The files a turn's new message attaches: `ids` (the caller's own), or with None those
    of `carried` (the message answered again, or edited); 400 `model_not_capable` for an
    image when the model reads none. Before anything is saved or charged."""
    if ids is None:
        files = list(carried.attachments.order_by("id")) if carried is not None else []
    else:
        files = attachments_get(user=user, file_ids=ids)
    if "vision" not in target.capabilities and any(f.content_type in IMAGE_FORMATS for f in files):
        raise ApiError(
            f"The model {target.name} does not take images.", code="model_not_capable", param="attachments"
        )
    return files


def attach_unsaved(*, message: Message, files: list[ChatFile]) -> None:
    """Gives a message not saved yet its attachments, as `with_attachments` gives saved ones."""
    setattr(message, ATTACHED, files)


def attachments_save(*, message: Message) -> None:
    """Saves the attachments `attach_unsaved` gave a message, once the message is saved."""
    files = getattr(message, ATTACHED, None)
    if files:
        message.attachments.set(files)


def with_attachments(messages: QuerySet[Message]) -> QuerySet[Message]:
    """The messages with their attachments read along (a query per chunk of messages)."""
    return messages.prefetch_related(
        Prefetch("attachments", queryset=ChatFile.objects.order_by("id"), to_attr=ATTACHED)
    )


def with_attachment_flag(messages: QuerySet[Message]) -> QuerySet[Message]:
    """The messages, each told whether it has attachments, so that a page without any
    costs no query for them (`prefetch_attachments`)."""
    through = Message.attachments.through.objects.filter(message_id=OuterRef("pk"))
    return messages.annotate(has_attachments=Exists(through))


def conversations_with_attachments(conversations: QuerySet[Any, Any]) -> QuerySet[Any, Any]:
    """Conversation rows, each with `has_attachments`: whether any of its messages has one."""
    through = Message.attachments.through.objects.filter(message__conversation_id=OuterRef("pk"))
    return conversations.annotate(has_attachments=Exists(through))


def prefetch_attachments(messages: Sequence[Message]) -> None:
    """Reads the attachments of these messages in one query (none if no message has any)."""
    wanted = [message for message in messages if getattr(message, "has_attachments", True)]
    for message in messages:
        setattr(message, ATTACHED, [])
    if not wanted:
        return
    by_message = _files_by_message([message.pk for message in wanted])
    for message in wanted:
        setattr(message, ATTACHED, by_message.get(message.pk, []))


def attached(message: Message) -> list[ChatFile]:
    """A message's attachments, read already where they were prefetched."""
    files = getattr(message, ATTACHED, None)
    return list(message.attachments.order_by("id")) if files is None else files


def attachment_rows(*, message_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """{message id: [{id, name, content_type, size}]} of these messages, in one query."""
    return {
        message_id: [
            {"id": f.pk, "name": f.name, "content_type": f.content_type, "size": f.size} for f in files
        ]
        for message_id, files in _files_by_message(message_ids).items()
    }


def _files_by_message(message_ids: Sequence[int]) -> dict[int, list[ChatFile]]:
    if not message_ids:
        return {}
    links = (
        Message.attachments.through.objects.filter(message_id__in=message_ids)
        .select_related("chatfile")
        .order_by("chatfile_id")
    )
    by_message: dict[int, list[ChatFile]] = {}
    for link in links:
        by_message.setdefault(link.message_id, []).append(link.chatfile)
    return by_message


# --- content parts of the turn ---------------------------------------------------------


def message_parts(*, message: Message, vision: bool) -> tuple[ContentPart, ...]:
    """The attachments of a message as the model reads them, before the message's text."""
    return tuple(_part(chat_file, vision=vision) for chat_file in getattr(message, ATTACHED, None) or ())


def _part(chat_file: ChatFile, *, vision: bool) -> ContentPart:
    is_image = chat_file.content_type in IMAGE_FORMATS
    if is_image and not vision:
        return TextPart(f"[Image {chat_file.name}: not shown, this model does not read images]")
    try:
        with chat_file.file.storage.open(chat_file.file.name, "rb") as handle:
            data = _read_all(handle)
    except OSError:
        logger.warning("The stored file %s of %s is gone", chat_file.file.name, chat_file.pk)
        return TextPart(f"[File {chat_file.name}: no longer available]")
    if is_image:
        return ImagePart(url=f"data:{chat_file.content_type};base64,{base64.b64encode(data).decode()}")
    text = pdf_text(data) if chat_file.content_type == PDF else data.decode("utf-8", errors="replace")
    return TextPart(f"File: {chat_file.name} ({chat_file.content_type})\n\n{text}")


def pdf_text(data: bytes) -> str:
    """The text of a PDF's pages, a blank line between pages; empty for a PDF of images only."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except Exception:
        # Checked when uploaded; a page pypdf still cannot read leaves the document without text.
        logger.warning("Could not extract the text of a PDF", exc_info=True)
        return ""
