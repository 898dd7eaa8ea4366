"""``cxrkit predict``: probabilities (and Grad-CAM overlays) for images from a saved model.

Without ``--out``, one tab-separated row per image is printed. With ``--out
DIR``, :func:`~cxrkit.estimators.predict_to_shards` writes the probabilities
to ``DIR`` shard by shard (resumable; on a Dask cluster with ``--scheduler``),
and an image argument that is a folder stands for the image files under it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "cmd_predict", "write_gradcams"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit predict`` to ``p``."""
    p.add_argument("model", help="folder written by --save or cxrkit.save_model")
    p.add_argument("images", nargs="+")
    p.add_argument("--gradcam", metavar="DIR", help="write Grad-CAM overlays here")
    p.add_argument("--device", default=None)
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decide the second class at p >= THRESHOLD (default: the model folder's "
        "operating_point.json, written by cxrkit run --save when the run fitted one; else 0.5)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write the probabilities as resumable shards here instead of printing them "
        "(folders among IMAGES stand for the image files under them)",
    )
    p.add_argument("--shard-size", type=int, default=1024, help="images per shard (--out)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="predict the shards on a running Dask scheduler, e.g. tcp://10.0.0.1:8786 (--out)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the shards of an earlier run in --out instead of resuming it",
    )
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Print one tab-separated row of probabilities per image."""
    import numpy as np

    from .._outputs import check_output_folder
    from ..ensembles import load_voting_ensemble
    from ..errors import ConfigurationError
    from ..estimators import load_model, read_operating_point

    if args.gradcam and args.out:
        raise ConfigurationError(
            "--gradcam writes one overlay per image, for a few images; it cannot be "
            "combined with --out. Run it separately on the images to inspect."
        )
    if (args.scheduler or args.overwrite) and not args.out:
        flag = "--scheduler" if args.scheduler else "--overwrite"
        raise ConfigurationError(
            f"{flag} applies to the shards written with --out DIR; add --out DIR or leave it out."
        )
    if args.gradcam:
        check_output_folder(args.gradcam, "--gradcam")
    if args.out:
        check_output_folder(args.out, "--out")
    if (Path(args.model) / "voting.json").is_file():
        model = load_voting_ensemble(args.model)
    elif (Path(args.model) / "ensemble.json").is_file():
        model = load_model(args.model)
    else:
        model = load_model(args.model, device=args.device or "auto")
    if args.out:
        return _predict_shards(args, model)
    paths = np.asarray(args.images, dtype=object)
    proba = model.predict_proba(paths)
    classes = [str(c) for c in model.classes_]
    point = read_operating_point(args.model, threshold=args.threshold)
    if point is not None and len(classes) != 2:
        raise SystemExit(
            f"cxrkit: error: an operating point applies to two-class models; this one has "
            f"{len(classes)} classes ({', '.join(classes)})."
        )
    if point is not None:
        print(f"# decision: p({classes[1]}) >= {point['threshold']:.4f} ({point['name']})")
        decided = np.where(proba[:, 1] >= point["threshold"], 1, 0)
    else:
        decided = proba.argmax(axis=1)
    print("image\t" + "\t".join(f"p({c})" for c in classes) + "\tprediction")
    for path, p, k in zip(args.images, proba, decided):
        print(f"{path}\t" + "\t".join(f"{v:.4f}" for v in p) + f"\t{classes[int(k)]}")
    if args.gradcam:
        write_gradcams(model, paths, proba, Path(args.gradcam))
    return 0


def _predict_shards(args: argparse.Namespace, model: Any) -> int:
    """``--out``: the probabilities of the images (folders expanded) as shards."""
    from ..datasets import IMAGE_SUFFIXES
    from ..errors import DataError
    from ..estimators import predict_to_shards

    paths: list[str] = []
    for item in args.images:
        if Path(item).is_dir():
            found = sorted(
                str(p)
                for p in Path(item).rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                print(f"warning: no image files under the folder '{item}'")
            paths += found
        else:
            paths.append(item)
    if not paths:
        raise DataError(
            f"No image files under {', '.join(args.images)} (looked for {', '.join(IMAGE_SUFFIXES)})."
        )
    run = predict_to_shards(
        model,
        paths,
        args.out,
        shard_size=args.shard_size,
        scheduler=args.scheduler,
        overwrite=args.overwrite,
        meta={"model": str(args.model)},
    )
    kept = f" ({run.n_skipped_resumed} kept from an earlier run)" if run.n_skipped_resumed else ""
    print(
        f"{run.n_images} images in {run.seconds:.1f} s: {run.n_shards} shards{kept} in "
        f"{Path(args.out) / 'shards'} (read them with cxrkit.estimators.read_shards)"
    )
    return 0


def write_gradcams(model: Any, paths: Any, proba: Any, out: Path) -> None:
    """Write one Grad-CAM overlay per image of ``paths`` into ``out``.

    Parameters
    ----------
    model : classifier or voting ensemble
        A fitted model; for an ensemble, its first member's network is used.
    paths : array of str
        The images.
    proba : ndarray of shape (n_images, 2)
        Their probabilities, shown in the titles.
    out : Path
        The folder to write ``<stem>_gradcam.png`` into.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..estimators._data import as_image_source
    from ..evaluation import gradcam

    if hasattr(model, "named_estimators_"):  # a voting ensemble: its first member's network
        model = model.estimators_[0]
    base = model.estimator_ if hasattr(model, "estimator_") else model
    out.mkdir(parents=True, exist_ok=True)
    batch = next(base.iter_batches(as_image_source(paths), batch_size=len(paths)))
    maps = gradcam(base.module_, batch.to(base.device_))
    prep = base.preprocessing_
    for j, path in enumerate(paths):
        img = batch[j, 0].numpy() * prep.std[0] + prep.mean[0]
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(img, cmap="gray")
        ax.imshow(maps[j], cmap="jet", alpha=0.4)
        ax.set_title(f"p({base.classes_[1]}) = {proba[j, 1]:.3f}", parse_math=False)
        ax.axis("off")
        target = out / (Path(str(path)).stem + "_gradcam.png")
        fig.savefig(target, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"Grad-CAM: {target}")
