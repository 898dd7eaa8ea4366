"""``cxrkit predict``: probabilities (and Grad-CAM overlays) for images from a saved model."""

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
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Print one tab-separated row of probabilities per image."""
    import numpy as np

    from .._outputs import check_output_folder
    from ..ensembles import load_voting_ensemble
    from ..estimators import load_model, read_operating_point

    if args.gradcam:
        check_output_folder(args.gradcam, "--gradcam")
    if (Path(args.model) / "voting.json").is_file():
        model = load_voting_ensemble(args.model)
    elif (Path(args.model) / "ensemble.json").is_file():
        model = load_model(args.model)
    else:
        model = load_model(args.model, device=args.device or "auto")
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
