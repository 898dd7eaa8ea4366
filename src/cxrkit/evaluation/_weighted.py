"""Binary metrics for many rows of image weights at once (the bootstrap's workhorse)."""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_stats", "point_stats"]


def weighted_stats(
    w: np.ndarray, t: np.ndarray, pred: np.ndarray, tie_id: np.ndarray, n_ties: int
) -> dict[str, np.ndarray]:
    """Metrics for each row of image weights ``w`` (B, n); all vectorised."""
    tp = w[:, t & pred].sum(1)
    fn = w[:, t & ~pred].sum(1)
    tn = w[:, ~t & ~pred].sum(1)
    fp = w[:, ~t & pred].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pos, neg = tp + fn, tn + fp
        out = {
            "accuracy": (tp + tn) / (pos + neg),
            "sensitivity": tp / pos,
            "specificity": tn / neg,
            "ppv_sample": tp / (tp + fp),
            "npv_sample": tn / (tn + fn),
        }
        # AUC: weighted positive and negative mass per tie block of the sorted scores
        order = np.argsort(tie_id, kind="stable")
        ends = np.searchsorted(tie_id[order], np.arange(n_ties), side="right") - 1
        ws = w[:, order]
        ts = t[order]
        cum_p = np.cumsum(np.where(ts, ws, 0.0), axis=1)[:, ends]
        cum_n = np.cumsum(np.where(ts, 0.0, ws), axis=1)[:, ends]
        P = np.diff(cum_p, axis=1, prepend=0.0)
        N = np.diff(cum_n, axis=1, prepend=0.0)
        below = np.cumsum(N, axis=1) - N  # negative mass strictly below each block
        out["auc"] = (P * (below + 0.5 * N)).sum(1) / (pos * neg)
    for v in out.values():
        v[~np.isfinite(v)] = np.nan
    return out


def point_stats(t: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    """Return the unweighted figures of labels ``t`` and scores ``s`` at ``threshold``."""
    _, tie_id = np.unique(s, return_inverse=True)
    stats = weighted_stats(np.ones((1, len(t))), t, s >= threshold, tie_id, int(tie_id.max()) + 1)
    return {k: float(v[0]) for k, v in stats.items()}
