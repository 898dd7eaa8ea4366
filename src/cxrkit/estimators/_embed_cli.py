"""``cxrkit embed``: write the embeddings of a dataset's images with their ids.

With ``--format shards``, :func:`~cxrkit.estimators.embed_to_shards` writes
``manifest.json``, ``shards/part-NNNNN.*`` (``--shard-size`` images each,
resumable, on a Dask cluster with ``--scheduler``) and ``index.csv``.

Otherwise, output in ``--out``: ``embeddings.parquet`` (one row per image: ``image``,
``patient_id``, ``label``, then one column per feature) when pyarrow is
installed, else ``embeddings.npy`` (float32, ``(n, d)``) with ``index.csv``
(``image``, ``patient_id``, ``label``, row order), and ``embed.json`` (the
architecture, weights, preprocessing and shape). The features are also kept
on disk in ``--out/feature-cache`` (or ``--cache-dir``), so a re-run reads them
instead of running the backbone again.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "cmd_embed", "write_embeddings"]


def write_embeddings(
    out: Path, feats: np.ndarray, index: Any, meta: dict[str, Any], fmt: str = "auto"
) -> list[Path]:
    """Write ``feats`` (``(n, d)``) with ``index`` (a DataFrame of ids) to ``out``."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    if fmt == "auto":
        fmt = "parquet" if importlib.util.find_spec("pyarrow") else "npy"
    files = []
    if fmt == "parquet":
        cols = pd.DataFrame(feats, columns=[f"f{i}" for i in range(feats.shape[1])])
        frame = pd.concat([index.reset_index(drop=True), cols], axis=1)
        frame.to_parquet(out / "embeddings.parquet", index=False)
        files.append(out / "embeddings.parquet")
    else:
        np.save(out / "embeddings.npy", feats)
        index.to_csv(out / "index.csv", index=False)
        files += [out / "embeddings.npy", out / "index.csv"]
    (out / "embed.json").write_text(json.dumps({**meta, "format": fmt}, indent=2))
    return files + [out / "embed.json"]


def cmd_embed(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..cli.options import key_values, load_spec
    from ._embedder import CXREmbedder

    if (args.scheduler or args.overwrite) and args.format != "shards":
        from ..errors import ConfigurationError

        flag = "--scheduler" if args.scheduler else "--overwrite"
        raise ConfigurationError(
            f"{flag} applies to --format shards (resumable shard files); add --format shards "
            "or leave it out."
        )
    ds = load_spec(args.data, key_values(args.data_option, "--data-option"))
    if args.labels:
        ds = ds.select(args.labels.split(","))
    out = Path(args.out)
    cache = args.cache_dir or str(out / "feature-cache")
    options = key_values(args.arch_option, "--arch-option")
    emb = CXREmbedder(
        args.arch,
        pretrained=args.pretrained,
        pooling=args.pooling,
        input_size=args.input_size,
        architecture_options=options,
        batch_size=args.batch_size,
        device=args.device or "auto",
        cache_dir=cache,
        progress=not args.quiet,
    )
    ids = [str(v) for v in (ds.X if ds.X.dtype == object else range(len(ds.X)))]
    index = pd.DataFrame(
        {
            "image": ids,
            "patient_id": (np.asarray(ds.groups).astype(str) if ds.groups is not None else ids),
            "label": np.asarray(ds.y).astype(str),
        }
    )
    meta = {
        "architecture": args.arch,
        "pretrained": args.pretrained,
        "pooling": args.pooling,
        "data": args.data,
    }
    emb.fit(ds.X)
    if args.format == "shards":
        return _embed_shards(args, emb, ds.X, index, meta)
    t0 = time.perf_counter()
    feats = emb.transform(ds.X)
    seconds = time.perf_counter() - t0
    meta.update(
        preprocessing=emb.preprocessing_.to_dict(),
        n_images=int(feats.shape[0]),
        n_features=int(feats.shape[1]),
        seconds=seconds,
    )
    files = write_embeddings(out, feats, index, meta, args.format)
    if not args.quiet:
        print(
            f"{feats.shape[0]} images x {feats.shape[1]} features in {seconds:.1f} s: "
            + ", ".join(str(f) for f in files)
        )
    return 0


def _embed_shards(
    args: argparse.Namespace, emb: Any, X: Any, index: Any, meta: dict[str, Any]
) -> int:
    """``--format shards``: :func:`embed_to_shards` into ``--out``, with ``index.csv``."""
    from ._shards import embed_to_shards

    out = Path(args.out)
    run = embed_to_shards(
        emb,
        X,
        out,
        ids=list(index["image"]),
        shard_size=args.shard_size,
        scheduler=args.scheduler,
        progress=not args.quiet,
        overwrite=args.overwrite,
        feature_cache=args.cache_dir is not None,
        meta={**meta, "preprocessing": emb.preprocessing_.to_dict()},
    )
    index.to_csv(out / "index.csv", index=False)
    if not args.quiet:
        kept = (
            f" ({run.n_skipped_resumed} kept from an earlier run)" if run.n_skipped_resumed else ""
        )
        print(
            f"{run.n_images} images x {emb.n_features_out_} features in {run.seconds:.1f} s: "
            f"{run.n_shards} shards{kept} in {out / 'shards'}, {out / 'manifest.json'}, "
            f"{out / 'index.csv'}"
        )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit embed`` to ``p``."""
    p.add_argument("--arch", required=True, help="architecture (see `cxrkit list architectures`)")
    p.add_argument(
        "--data",
        required=True,
        metavar="NAME:ROOT",
        help="dataset, e.g. csv:../shared/data/cxr-dev/metadata.csv",
    )
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--labels", help="keep only these labels, e.g. covid,pneumonia")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--pretrained",
        default=None,
        help="weights: xrv, default, imagenet or a file (default: random)",
    )
    p.add_argument("--pooling", default=None, help="e.g. cls or cls_mean for rad_dino")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument(
        "--arch-option",
        action="append",
        metavar="KEY=VALUE",
        help="architecture factory option, e.g. pretrained_strict=false",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--format",
        choices=["auto", "parquet", "npy", "shards"],
        default="auto",
        help="shards: one file per --shard-size images, resumable (see docs/backbones.md)",
    )
    p.add_argument(
        "--shard-size", type=int, default=1024, help="images per shard (--format shards)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="embed the shards on a running Dask scheduler, e.g. tcp://10.0.0.1:8786 "
        "(--format shards; workers must see the images and --out)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the shards of an earlier run in --out instead of resuming it",
    )
    p.add_argument(
        "--cache-dir", default=None, help="feature cache folder (default: OUT/feature-cache)"
    )
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_embed)
