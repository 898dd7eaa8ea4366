"""B8: loaders and metadata guards on the real public label files (no images).

For each of the five public label files in ``../shared/data/public-metadata``
(CheXpert, PadChest, NIH ChestX-ray14, VinDr-CXR, RSNA), in a fresh process so
that peak RSS is per dataset: the time to load it (``check_images=False``), the
time of the metadata guards (after importing cxrkit, timed apart) (patient ids, confounding by view/sex/age/source,
5-fold patient-grouped split with its leakage check, hold-out split, train/test
leakage), peak RSS, and the time of the streamed existence check of every
listed image (none are present: all are reported missing, as counts).
Targets: load < 5 s, guards < 30 s and < 2 GB.

    python benchmarks/b8_metadata_scale.py [--data ../shared/data/public-metadata]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: ``$CXRKIT_SHARED_DATA/public-metadata``, else ``../shared/data/public-metadata`` beside the repository.
DEFAULT = (
    Path(os.environ["CXRKIT_SHARED_DATA"])
    if os.environ.get("CXRKIT_SHARED_DATA")
    else HERE.parents[1] / "shared" / "data"
) / "public-metadata"

#: name -> (loader, options, binary target for the guards)
DATASETS = {
    "chexpert": ("chexpert", {"labels_file": "chexpert_train.csv.gz"}, "no_finding"),
    "padchest": (
        "padchest",
        {"labels_file": "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"},
        "no_finding",
    ),
    "chestxray14": ("chestxray14", {}, "no_finding"),
    "vindr-cxr": ("vindr-cxr", {"labels_file": "vinbigdata-train.csv.gz"}, "no_finding"),
    "rsna-pneumonia": (
        "rsna-pneumonia",
        {
            "labels_file": "kaggle_stage_2_train_labels.csv.zip",
            "headers_file": "kaggle_stage_2_train_images_dicom_headers.csv.gz",
        },
        "pneumonia",
    ),
}


def _one(name: str, data: Path) -> dict[str, object]:
    t0 = time.perf_counter()
    from cxrkit.datasets import list_datasets, load_dataset, missing_files
    from cxrkit.validity import (
        GroupAwareCV,
        check_confounding,
        check_train_test_leakage,
        holdout_split,
        patient_coverage,
        splitter_leakage,
    )

    list_datasets()  # imports cxrkit and its plugins (torch included): reported apart
    t_import = time.perf_counter() - t0
    loader, opts, target = DATASETS[name]
    opts = {k: str(data / v) for k, v in opts.items()}
    root = None
    if name == "chestxray14":  # the loader finds Data_Entry_2017_v2020.csv.gz in root
        root = str(data)
    t0 = time.perf_counter()
    ds = load_dataset(loader, root=root, check_images=False, min_classes=1, **opts)
    t_load = time.perf_counter() - t0
    # one binary label per image for the guards: the finding positive or not (blank = not)
    y = np.where(ds.labels[target].to_numpy() == 1, target, f"no_{target}").astype(object)
    md = ds.metadata.assign(label=y)
    t0 = time.perf_counter()
    res = [patient_coverage(ds.groups, len(ds))]
    res += check_confounding(md, y, columns=("source", "view", "sex"))
    res.append(splitter_leakage(GroupAwareCV(5, random_state=0), ds.X, y, ds.groups))
    tr, va = holdout_split(y, ds.groups, 0.2, random_state=0)
    check_train_test_leakage(ds.groups[tr], ds.groups[va])
    t_guards = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    gone = missing_files(ds.X, progress=False)
    t_exists = time.perf_counter() - t0
    return {
        "dataset": name,
        "rows": len(ds),
        "patients": ds.n_patients,
        "findings": len(ds.findings),
        "import_s": round(t_import, 2),
        "load_s": round(t_load, 2),
        "guards_s": round(t_guards, 2),
        "peak_rss_mb": round(rss),
        "exists_s": round(t_exists, 2),
        "missing": int(gone.sum()),
        "guards": {r.name: r.status for r in res},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.data)))
        return
    sys.path.insert(0, str(HERE))
    from _common import header

    header("B8 metadata loaders and guards at real scale (no images)")
    print(f"load average: {os.getloadavg()[0]:.1f} (1 min)")
    print(
        f"{'dataset':<15}{'rows':>9}{'patients':>10}{'find.':>6}{'import s':>9}{'load s':>8}{'guards s':>9}"
        f"{'peak MB':>9}{'exists s':>9}{'missing':>9}  guards"
    )
    ok = True
    for name in DATASETS:
        out = subprocess.run(
            [sys.executable, __file__, "--data", str(args.data), "--one", name],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ok &= r["load_s"] < 5 and r["guards_s"] < 30 and r["peak_rss_mb"] < 2048
        status = ", ".join(f"{k.split(':')[-1]}={v}" for k, v in r["guards"].items())
        print(
            f"{r['dataset']:<15}{r['rows']:>9,}{r['patients']:>10,}{r['findings']:>6}"
            f"{r['import_s']:>9.2f}{r['load_s']:>8.2f}{r['guards_s']:>9.2f}{r['peak_rss_mb']:>9,}"
            f"{r['exists_s']:>9.2f}{r['missing']:>9,}  {status}"
        )
    print("targets (load < 5 s, guards < 30 s, < 2 GB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
