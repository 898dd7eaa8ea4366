"""The ``cxrkit serve`` subcommand."""

from __future__ import annotations

import argparse
import ipaddress
import os

from ..errors import ConfigurationError

__all__ = ["add_arguments", "cmd_serve", "TOKEN_ENV"]

#: Environment variable read when ``--token`` is not given.
TOKEN_ENV = "CXRKIT_SERVE_TOKEN"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit serve`` to ``p``."""
    p.description = (
        "Serve a saved model: the page at /, the API at /v1/predict and /v1/model, "
        "OpenAPI docs at /docs."
    )
    _add_model_arguments(p)
    _add_limit_arguments(p)
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this origin to call the API (repeatable; default: CORS off)",
    )
    p.add_argument("--log-level", default="info", help="uvicorn's log level")
    p.set_defaults(func=cmd_serve)


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Add the model, address, token and OOD arguments to ``p``."""
    p.add_argument("model", help="folder written by --save or cxrkit.save_model")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s; any other needs --token)",
    )
    p.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token every API call must send (default: ${TOKEN_ENV})",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="operating point: decide classes_[1] when its probability >= this "
        "(default: the model folder's operating_point.json, if any)",
    )
    p.add_argument(
        "--ood-data",
        metavar="NAME:ROOT",
        help="training images to fit the out-of-distribution reference from at "
        "start-up (default: the model folder's ood_reference.safetensors)",
    )
    p.add_argument(
        "--save-ood",
        action="store_true",
        help="write the reference fitted from --ood-data into the model folder",
    )


def _add_limit_arguments(p: argparse.ArgumentParser) -> None:
    """Add the upload, batching and thread limits to ``p``."""
    from ._batching import MAX_BATCH, MAX_QUEUE, MAX_WAIT_MS
    from ._uploads import MAX_PIXELS, MAX_UPLOAD_BYTES

    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=MAX_UPLOAD_BYTES / 2**20,
        help="largest request body in MiB (default: %(default)g; larger: 413)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help="largest image in pixels (default: %(default)d; larger: 422)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=MAX_BATCH,
        help="most images per forward pass (default: %(default)d)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=MAX_WAIT_MS,
        help="longest wait for more requests to batch (default: %(default)g)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=MAX_QUEUE,
        help="most images waiting before 503 (default: %(default)d)",
    )
    p.add_argument(
        "--decode-threads",
        type=int,
        default=None,
        help="threads decoding uploads (default: min(8, cores))",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for the forward pass (default: torch's)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model once and run the app under uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "cxrkit serve needs FastAPI and uvicorn: pip install 'cxrkit[serve]'."
        ) from None
    import torch

    from ._app import ServeConfig, create_app
    from ._model import ServedModel, fit_ood_reference

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not _is_loopback(args.host) and token is None:
        raise ConfigurationError(
            f"--host {args.host} makes the model reachable from other machines; give a token "
            f"with --token or ${TOKEN_ENV} (every API call must then send it), or bind to "
            "127.0.0.1."
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    served = ServedModel.from_directory(args.model, device=args.device, threshold=args.threshold)
    if args.ood_data:
        from ..datasets import load_dataset

        name, _, root = args.ood_data.partition(":")
        ds = load_dataset(name, root=root or None)
        ref = fit_ood_reference(served, ds.X, save=args.save_ood)
        print(
            f"OOD reference: {ref.n_fit} + {ref.n_calibration} images, threshold "
            f"{ref.threshold:.2f}" + (f" (saved in {args.model})" if args.save_ood else "")
        )
    config = ServeConfig(
        token=token,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        decode_threads=args.decode_threads,
        cors_origins=tuple(args.cors_origin),
    )
    app = create_app(served, config)
    print(
        f"cxrkit serve: {served.directory.name} ({' vs '.join(served.classes)}) on "
        f"http://{args.host}:{args.port}/",
        flush=True,
    )
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5
    )
    return 0
