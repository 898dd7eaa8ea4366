"""The FastAPI application: JSON API, the page, token check and limits.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints'
annotations at run time, and they name classes imported inside :func:`create_app`.
"""

import asyncio
import functools
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import numpy as np

from ._batching import MAX_BATCH, MAX_QUEUE, MAX_WAIT_MS, MicroBatcher, ServerBusy
from ._guards import decode_upload
from ._model import ServedModel, png_data_url
from ._uploads import (
    ACCEPTED_TYPES,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    BodySizeLimit,
    Upload,
    UploadRejected,
    parse_multipart,
)

__all__ = ["ServeConfig", "create_app", "PAGE_CSP"]

#: Content-Security-Policy of the page: nothing loads from anywhere but the server.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PREVIEW_SIDE = 512
_PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}


@dataclass
class ServeConfig:
    """Server settings (``cxrkit serve`` flags).

    Parameters
    ----------
    token : str or None, default=None
        When set, every ``/v1/`` call must send ``Authorization: Bearer <token>``.
    max_upload_bytes : int, default=50 MB
        Largest request body; larger ones get 413.
    max_pixels : int, default=40,000,000
        Largest image; larger ones are refused as possible decompression bombs (422).
    max_files : int, default=64
        Most files in one request (413 beyond).
    max_batch, max_wait_ms, max_queue
        Micro-batching (see :class:`~cxrkit.serve.MicroBatcher`).
    decode_threads : int, default=min(8, cpu count)
        Threads decoding uploads.
    cors_origins : tuple of str, default=()
        Origins allowed to call the API from other pages; none by default (CORS off).
    """

    token: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    max_files: int = 64
    max_batch: int = MAX_BATCH
    max_wait_ms: float = MAX_WAIT_MS
    max_queue: int = MAX_QUEUE
    decode_threads: int | None = None
    cors_origins: tuple[str, ...] = ()


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _preview(img: np.ndarray) -> str:
    from PIL import Image

    pil = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    pil.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE), Image.Resampling.BILINEAR)
    return png_data_url(np.asarray(pil))


class _SecurityHeaders:
    """ASGI middleware: ``nosniff`` and ``no-referrer`` everywhere, the CSP on the page."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if scope.get("path") in _PAGE_FILES:
            extra += [
                (b"content-security-policy", PAGE_CSP.encode()),
                (b"cache-control", b"no-cache"),
            ]

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", ())}
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", ()),
                        *(h for h in extra if h[0] not in names),
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Service:
    """The state one app shares between requests: model, batcher, decoding threads."""

    def __init__(self, served: ServedModel, config: ServeConfig) -> None:
        self.served = served
        self.config = config
        threads = config.decode_threads or max(1, min(8, os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="cxrkit-decode")
        self.batcher = MicroBatcher(
            served.predict_batch,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
        )

    def decode(self, upload: Upload, preview: bool) -> tuple[np.ndarray, dict[str, Any]]:
        img = decode_upload(
            upload, self.served.preprocessing.input_size, max_pixels=self.config.max_pixels
        )
        info = {
            "filename": upload.filename,
            "type": upload.kind,
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
            "preview": _preview(img) if preview else None,
        }
        return self.served.prepare(img), info

    async def predict(
        self, uploads: list[Upload], *, gradcam: bool, preview: bool
    ) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        self.batcher.reserve()
        try:
            decoded = await asyncio.gather(
                *(loop.run_in_executor(self.pool, self.decode, u, preview) for u in uploads)
            )
            future = self.batcher.submit([d[0] for d in decoded], reserved=True)
        except BaseException:
            self.batcher.release()
            raise
        proba, feats = await asyncio.wrap_future(future)
        distances = self.served.ood.distance(feats) if self.served.ood is not None else None
        results = []
        for i, (upload, (prepared, info)) in enumerate(zip(uploads, decoded)):
            warnings = list(upload.warnings)
            ood = None
            if distances is not None and self.served.ood is not None:
                limit = self.served.ood.threshold
                ood = {
                    "distance": float(distances[i]),
                    "threshold": limit,
                    "flag": bool(distances[i] > limit),
                }
                if ood["flag"]:
                    warnings.append(
                        {
                            "code": "out_of_distribution",
                            "message": (
                                f"The image's embedding is {distances[i]:.1f} from the training set's "
                                f"(Mahalanobis; {self.served.ood.quantile:.0%} of held-out training "
                                f"images are under {limit:.1f}); it may not be a chest X-ray like the "
                                "training images, so the probabilities may be meaningless."
                            ),
                        }
                    )
            p = proba[i]
            overlay = None
            if gradcam:
                call = self.batcher.call(functools.partial(self.served.gradcam_overlay, prepared))
                overlay = await asyncio.wrap_future(call)
            results.append(
                {
                    **info,
                    "probabilities": {c: float(v) for c, v in zip(self.served.classes, p)},
                    "prediction": self.served.classes[int(np.argmax(p))],
                    "decision": self.served.decide(p),
                    "warnings": warnings,
                    "ood": ood,
                    "gradcam": overlay,
                }
            )
        return results


def _add_error_handlers(app: Any) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.exception_handler(UploadRejected)
    async def rejected(_request: Request, exc: UploadRejected) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if exc.status == 415:
            body["accepted"] = sorted(ACCEPTED_TYPES.values())
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(ServerBusy)
    async def busy(_request: Request, exc: ServerBusy) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})


def _add_page(app: Any) -> None:
    from fastapi.responses import Response

    def page_file(path: str) -> Any:
        name, media = _PAGE_FILES[path]
        data = resources.files("cxrkit.serve").joinpath("static", name).read_bytes()

        def handler() -> Response:
            return Response(data, media_type=media)

        return handler

    for path in _PAGE_FILES:
        app.add_api_route(path, page_file(path), methods=["GET"], include_in_schema=False)


_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "PNG, JPEG or DICOM files",
                        },
                        "gradcam": {
                            "type": "boolean",
                            "description": "add a Grad-CAM overlay (PNG data URL)",
                        },
                        "preview": {
                            "type": "boolean",
                            "description": "add the decoded image (PNG data URL)",
                        },
                    },
                }
            }
        },
    }
}


def create_app(
    model: ServedModel | str | os.PathLike[str],
    config: ServeConfig | None = None,
    *,
    device: str = "auto",
) -> Any:
    """Return the FastAPI application serving ``model``.

    Parameters
    ----------
    model : ServedModel or path-like
        A loaded model or a folder written by :func:`cxrkit.save_model`.
    config : ServeConfig, optional
        Limits, token, batching; defaults as documented on :class:`ServeConfig`.
    device : str, default="auto"
        Used when ``model`` is a folder.

    Returns
    -------
    fastapi.FastAPI
    """
    from fastapi import FastAPI

    from .. import __version__

    config = config or ServeConfig()
    served = (
        model
        if isinstance(model, ServedModel)
        else ServedModel.from_directory(model, device=device)
    )
    service = _Service(served, config)

    @asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        service.batcher.start()
        try:
            yield
        finally:
            service.batcher.stop()
            service.pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="cxrkit serve",
        version=__version__,
        lifespan=lifespan,
        description=f"Chest X-ray classifier '{served.directory.name}' "
        f"({' vs '.join(served.classes)}).",
    )
    app.state.service = service
    check_token = _token_checker(config)
    _add_error_handlers(app)
    _add_page(app)
    _add_info_routes(app, service, config, check_token)
    _add_predict_route(app, service, config, check_token)
    _add_middleware(app, config)
    return app


def _token_checker(config: ServeConfig) -> Callable[..., None]:
    """Return the dependency that checks the bearer token (a no-op without one)."""
    from fastapi import HTTPException, Request

    def check_token(request: Request) -> None:
        if config.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.encode(), config.token.encode()
        ):
            raise HTTPException(
                401,
                "This server needs a token: send the header "
                "'Authorization: Bearer <token>' (the page asks for it).",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check_token


def _add_info_routes(
    app: Any, service: _Service, config: ServeConfig, check_token: Callable[..., None]
) -> None:
    """Add ``/healthz`` (open) and ``/v1/model`` (behind the token) to ``app``."""
    from fastapi import Depends

    served = service.served

    @app.get("/healthz", summary="Liveness and batching counters")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": served.directory.name, "batching": service.batcher.stats()}

    @app.get(
        "/v1/model",
        summary="Model card, classes, preprocessing and versions",
        dependencies=[Depends(check_token)],
    )
    def model_info() -> dict[str, Any]:
        limits = {k: v for k, v in asdict(config).items() if k not in ("token", "cors_origins")}
        return {
            **served.card(),
            "accepted_types": sorted(ACCEPTED_TYPES.values()),
            "server": {**limits, "token_required": config.token is not None},
        }


def _add_predict_route(
    app: Any, service: _Service, config: ServeConfig, check_token: Callable[..., None]
) -> None:
    """Add ``POST /v1/predict`` (behind the token) to ``app``."""
    from fastapi import Depends, HTTPException, Request

    served = service.served

    @app.post(
        "/v1/predict",
        summary="Probabilities, decision and warnings for uploaded images",
        dependencies=[Depends(check_token)],
        openapi_extra=_PREDICT_BODY,
    )
    async def predict(
        request: Request, gradcam: bool = False, preview: bool = False
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        body = await request.body()
        uploads, fields = parse_multipart(
            body, request.headers.get("content-type", ""), max_files=config.max_files
        )
        if not uploads:
            raise HTTPException(
                422,
                "No file was uploaded: send one or more PNG, JPEG or DICOM "
                "files as multipart 'files' parts.",
            )
        results = await service.predict(
            uploads,
            gradcam=gradcam or _truthy(fields.get("gradcam")),
            preview=preview or _truthy(fields.get("preview")),
        )
        return {
            "model": served.directory.name,
            "results": results,
            "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 2),
        }


def _add_middleware(app: Any, config: ServeConfig) -> None:
    """Add CORS (when origins are configured), the body-size limit and security headers."""
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=config.max_upload_bytes)
    app.add_middleware(_SecurityHeaders)
