"""``cxrkit train-lungs``: cross-validate, train and save a lung segmenter."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_arguments", "cmd_train_lungs", "write_overlays", "write_model_card"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit train-lungs`` to ``p``."""
    p.add_argument(
        "--masks",
        required=True,
        metavar="DIR",
        help="lung-mask folder with metadata.csv and masks/ (e.g. ../shared/data/lung-masks)",
    )
    p.add_argument(
        "--images",
        metavar="DIR",
        help="folder the image column is relative to (default: MASKS/../cxr-dev)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="where the segmenter is written")
    p.add_argument("--size", type=int, default=128, help="input side in pixels (default: 128)")
    p.add_argument("--epochs", type=int, default=40, help="training epochs (default: 40)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument(
        "--base-channels",
        type=int,
        default=8,
        help="U-Net width of the first stage (default: 8, ~0.5 M parameters)",
    )
    p.add_argument(
        "--cv",
        type=int,
        default=5,
        metavar="K",
        help="patient-grouped folds to report Dice/IoU on (0: skip; default: 5)",
    )
    p.add_argument(
        "--overlays",
        type=int,
        default=12,
        metavar="N",
        help="held-out overlays to draw (default: 12, plus the 4 worst)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_lungs)


def write_overlays(
    images: list[np.ndarray],
    truth: list[np.ndarray],
    pred: list[np.ndarray],
    titles: list[str],
    path: Path,
    ncols: int = 4,
    heading: str = "manual mask (green), predicted on held-out patients (red)",
) -> Path:
    """Write a PNG grid of images with the manual (green) and predicted (red) lung masks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, t, p, title in zip(axes.ravel(), images, truth, pred, titles):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        if t is not None and t.any():
            ax.contour(t, levels=[0.5], colors="lime", linewidths=1)
        if p is not None and p.any():
            ax.contour(p, levels=[0.5], colors="red", linewidths=1)
        ax.set_title(title, fontsize=8)
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_model_card(
    out: Path,
    args: argparse.Namespace,
    seg: Any,
    summary: str,
    cv: dict[str, Any] | None,
    weights_bytes: int,
) -> Path:
    """``MODEL_CARD.md``: data, training, patient-grouped results, intended use."""
    n_params = sum(p.numel() for p in seg.module_.parameters())
    lines = [
        "# Lung-field segmenter (cxrkit `lung_unet`)",
        "",
        f"- Data: {summary} (`{args.masks}`).",
        f"- Network: U-Net, base {args.base_channels} channels, {n_params:,} parameters, "
        f"{args.size} px input, weights {weights_bytes / 1e6:.2f} MB (`model.safetensors`).",
        f"- Training: Dice + BCE, AdamW lr {args.lr}, cosine schedule, {args.epochs} epochs, "
        f"batch {args.batch_size}, random flips/rotation/zoom/shift, seed {args.seed}; "
        f"final model trained on all {seg.n_train_images_} images in {seg.fit_seconds_:.0f} s.",
        f"- Lung fractions accepted as plausible: {seg.lung_fraction_range_[0]:.3f}-"
        f"{seg.lung_fraction_range_[1]:.3f} (the training range).",
        "",
    ]
    if cv:
        lines += [
            f"## Patient-grouped {cv['n_splits']}-fold cross-validation",
            "",
            "95% intervals: patient-level cluster bootstrap.",
            "",
            "| fold | images | patients | Dice | IoU | implausible |",
            "|---|---|---|---|---|---|",
        ]
        for f in cv["folds"]:
            d, i = f["dice"], f["iou"]
            lines.append(
                f"| {f['fold']} | {f['n_images']} | {f['n_patients']} | {d['mean']:.3f} "
                f"[{d['ci_low']:.3f}, {d['ci_high']:.3f}] | {i['mean']:.3f} "
                f"[{i['ci_low']:.3f}, {i['ci_high']:.3f}] | {f['n_implausible']} |"
            )
        d, i = cv["overall"]["dice"], cv["overall"]["iou"]
        lines += [
            f"| all | {cv['n_images']} | {cv['n_patients']} | {d['mean']:.3f} "
            f"[{d['ci_low']:.3f}, {d['ci_high']:.3f}] | {i['mean']:.3f} "
            f"[{i['ci_low']:.3f}, {i['ci_high']:.3f}] | {cv['overall']['n_implausible']} |",
            "",
            f"Cross-validation took {cv['total_seconds']:.0f} s. Overlays: "
            "`overlays.png` (a sample and the worst held-out images).",
            "",
        ]
    lines += [
        "## Use",
        "",
        "`cxrkit.segmentation.load_segmenter(DIR)`, or set `CXRKIT_LUNG_SEGMENTER=DIR` for "
        "the `lung_crop`, `lung_mask` and `lung_blackout` transforms and the lung guards. "
        "Trained on COVID-19 images of one public collection only: check the overlays "
        "before trusting it on other data.",
        "",
    ]
    path = out / "MODEL_CARD.md"
    path.write_text("\n".join(lines))
    return path


def cmd_train_lungs(args: argparse.Namespace) -> int:
    """Cross-validate (``--cv``), train on everything and save to ``--out``."""
    from . import (
        LungSegmenter,
        cross_validate_segmenter,
        load_lung_masks,
        read_images,
        read_masks,
        save_segmenter,
    )

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    data = load_lung_masks(args.masks, args.images)
    say(data.summary())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images, truth = read_images(data.images), read_masks(data.masks)
    seg = LungSegmenter(
        input_size=args.size,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        architecture_params={"base_channels": args.base_channels},
        device=args.device,
        random_state=args.seed,
    )
    cv = None
    t0 = time.perf_counter()
    if args.cv and args.cv > 1:
        say(f"Patient-grouped {args.cv}-fold cross-validation ...")
        cv = cross_validate_segmenter(
            seg,
            images,
            truth,
            data.groups,
            n_splits=args.cv,
            random_state=args.seed,
            progress=not args.quiet,
            keep_masks=True,
        )
        masks = cv.pop("masks")
        d, i = cv["overall"]["dice"], cv["overall"]["iou"]
        say(
            f"All held-out images: Dice {d['mean']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}], "
            f"IoU {i['mean']:.3f} [{i['ci_low']:.3f}, {i['ci_high']:.3f}]; fold means Dice "
            f"{cv['fold_mean']['dice']:.3f} +- {cv['fold_mean']['dice_sd']:.3f} "
            f"({cv['total_seconds']:.0f} s)"
        )
        dice = np.array([r["dice"] for r in cv["per_image"]])
        rng = np.random.default_rng(args.seed)
        pick = list(rng.choice(len(images), min(args.overlays, len(images)), replace=False))
        pick += [int(j) for j in np.argsort(dice)[:4] if j not in pick]
        write_overlays(
            [images[j] for j in pick],
            [truth[j] for j in pick],
            [masks[j] for j in pick],
            [f"{Path(str(data.images[j])).stem[:22]} Dice {dice[j]:.2f}" for j in pick],
            out / "overlays.png",
        )
        (out / "cv.json").write_text(json.dumps(cv, indent=2) + "\n")
    say(f"Training the final segmenter on all {len(images)} images ...")
    final = seg.set_params(validation_fraction=0.0).fit(images, truth, groups=data.groups)
    paths = save_segmenter(final, out)
    card = write_model_card(out, args, final, data.summary(), cv, paths["weights"].stat().st_size)
    say(
        f"Final model: {final.fit_seconds_:.0f} s; total {time.perf_counter() - t0:.0f} s. "
        f"Wrote {paths['weights']}, {card}" + (f", {out / 'overlays.png'}" if cv else "")
    )
    return 0
