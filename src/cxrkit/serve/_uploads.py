"""Uploaded files: multipart parsing in memory, type sniffing and hostile-input refusal.

A request body is read whole into memory (it is bounded by the size limit, see
:class:`BodySizeLimit`) and split into its parts with python-multipart's
streaming parser, so an upload is never written to disk: no temporary file, no
user-chosen file name on any file system.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..errors import CxrkitError

__all__ = [
    "ACCEPTED_TYPES",
    "MAX_UPLOAD_BYTES",
    "MAX_PIXELS",
    "Upload",
    "UploadRejected",
    "BodySizeLimit",
    "parse_multipart",
    "sniff_type",
    "check_pixel_count",
]

#: Default limit on one request body, in bytes (50 MB).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: Default limit on the pixels of one decoded image (a 6,300 x 6,300 radiograph).
MAX_PIXELS = 40_000_000
#: Media types the server accepts, by the kind sniffed from the file's first bytes.
ACCEPTED_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "dicom": "application/dicom"}


class UploadRejected(CxrkitError, ValueError):
    """An upload the server refuses; ``status`` is the HTTP status code to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """One uploaded file, held in memory."""

    filename: str
    data: bytes
    kind: str = ""
    warnings: list[dict[str, Any]] = field(default_factory=list)


def sniff_type(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or ``"dicom"`` from the magic bytes, else ``None``.

    The declared content type and the file name are not trusted: a text file named
    ``.png`` is not a PNG.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    return None


def check_pixel_count(upload: Upload, max_pixels: int) -> str:
    """Refuse a PNG or JPEG whose header declares more than ``max_pixels`` pixels.

    Only the header is read, so a decompression bomb is refused before it is
    inflated. Returns the Pillow mode the header declares (``"L"``, ``"I;16"``, ...).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data)) as img:
                width, height = img.size
                mode = img.mode
    except Image.DecompressionBombError as exc:
        raise UploadRejected(
            f"Upload '{upload.filename}' was refused as a possible decompression bomb ({exc}).", 422
        ) from None
    except Exception as exc:  # noqa: BLE001 - the decoder names the fault; report it
        raise UploadRejected(
            f"Upload '{upload.filename}' could not be read as "
            f"{upload.kind.upper()} ({type(exc).__name__}: {exc}).",
            422,
        ) from None
    if width * height > max_pixels:
        raise UploadRejected(
            f"Upload '{upload.filename}' was refused as a possible decompression bomb: its "
            f"header declares {width}x{height} = {width * height:,} pixels, more than the "
            f"server's limit of {max_pixels:,} (cxrkit serve --max-pixels).",
            422,
        )
    return mode


def _content_disposition(value: bytes) -> tuple[str | None, str | None]:
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(value)
    if kind.lower() != b"form-data":
        return None, None
    name = params.get(b"name")
    filename = params.get(b"filename")
    return (
        name.decode("utf-8", "replace") if name is not None else None,
        filename.decode("utf-8", "replace") if filename is not None else None,
    )


def parse_multipart(
    body: bytes, content_type: str, *, max_files: int = 64
) -> tuple[list[Upload], dict[str, str]]:
    """Split a ``multipart/form-data`` body into file parts and text fields.

    Parameters
    ----------
    body : bytes
        The whole request body.
    content_type : str
        The request's ``Content-Type`` header (it carries the boundary).
    max_files : int, default=64
        Most file parts accepted in one request.

    Returns
    -------
    uploads : list of Upload
        The parts that carried a ``filename``, in order.
    fields : dict
        The other parts, decoded as UTF-8.

    Raises
    ------
    UploadRejected
        415 when the body is not multipart, 400 when it is malformed, 413 when it
        holds more than ``max_files`` files.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type)
    if kind.lower() != b"multipart/form-data" or b"boundary" not in params:
        raise UploadRejected(
            f"POST /v1/predict takes multipart/form-data with one or more 'files' parts; got "
            f"Content-Type {content_type or '(none)'!r}. Send the images as a form upload "
            "(e.g. curl -F files=@image.png).",
            415,
        )
    parts: list[dict[str, Any]] = []
    header: dict[str, bytes] = {}
    current: dict[str, Any] = {}

    def on_part_begin() -> None:
        current.clear()
        current.update(headers={}, chunks=[])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] = header.get("field", b"") + data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] = header.get("value", b"") + data[start:end]

    def on_header_end() -> None:
        current["headers"][header.get("field", b"").lower()] = header.get("value", b"")
        header.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["chunks"].append(data[start:end])

    def on_part_end() -> None:
        parts.append({"headers": dict(current["headers"]), "data": b"".join(current["chunks"])})

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(params[b"boundary"], callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # noqa: BLE001 - python-multipart's errors say what broke
        raise UploadRejected(f"The multipart body is malformed ({exc}).", 400) from None
    uploads: list[Upload] = []
    fields: dict[str, str] = {}
    for part in parts:
        name, filename = _content_disposition(part["headers"].get(b"content-disposition", b""))
        if name is None:
            continue
        if filename is None:
            fields[name] = part["data"].decode("utf-8", "replace")
        else:
            uploads.append(
                Upload(filename=filename or f"upload-{len(uploads) + 1}", data=part["data"])
            )
    if len(uploads) > max_files:
        raise UploadRejected(
            f"The request holds {len(uploads)} files; at most {max_files} are "
            "accepted at once. Split the upload.",
            413,
        )
    return uploads, fields


class BodySizeLimit:
    """ASGI middleware answering 413 to request bodies over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before the body is
    read; a body without one (chunked) is counted while it arrives and refused as
    soon as it passes the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(seen)
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BaseException as exc:
            too_large = _find_too_large(exc)
            if too_large is None:
                raise
            if not started:
                await self._refuse(send, too_large.seen)

    async def _refuse(self, send: Any, size: int) -> None:
        import json

        body = json.dumps(
            {
                "detail": (
                    f"The request body ({size:,} bytes or more) is larger than the server's limit of "
                    f"{self.max_bytes:,} bytes. Send fewer or smaller files, or start the server with "
                    "a larger --max-upload-mb."
                )
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _find_too_large(exc: BaseException) -> _TooLarge | None:
    """Return the :class:`_TooLarge` in ``exc``, also inside (nested) exception groups."""
    if isinstance(exc, _TooLarge):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _find_too_large(inner)
        if found is not None:
            return found
    return None


class _TooLarge(Exception):
    def __init__(self, seen: int) -> None:
        super().__init__(seen)
        self.seen = seen
