"""Effect sizes to and from PyMARE's `Dataset`, so that work moves both ways between the two.

PyMARE (neurostuff/PyMARE) holds a meta-analysis as `Dataset(y, v, X, n)`: 2-D columns, an
intercept column added to `X`. Ours is `EffectSizes` (1-D `yi`, `vi`, the counts behind them and
the study labels). `to_pymare` gives PyMARE's estimators our effect sizes; `from_pymare` (and
`rma(dataset)`, which calls it) pools a PyMARE Dataset with our models. Only intercept-only
datasets carry over: a Dataset with moderators is refused with a pointer to `rma_mods`, rather
than fitted without them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metaanalysis.engine.effects import MEASURES, EffectSizes


def is_pymare_dataset(obj: Any) -> bool:
    """True for a `pymare.Dataset` (checked by type name, so pymare is imported only when used)."""
    return type(obj).__name__ == "Dataset" and type(obj).__module__.split(".")[0] == "pymare"


def to_pymare(es: EffectSizes):
    """A `pymare.Dataset` of `es.yi`, `es.vi` (and `es.n` for proportions), intercept only."""
    from pymare import Dataset

    n = None if es.n is None else np.asarray(es.n, dtype=float)
    return Dataset(y=np.asarray(es.yi, dtype=float), v=np.asarray(es.vi, dtype=float), n=n, add_intercept=True)


def from_pymare(dataset, *, measure: str = "GEN", studies=None) -> EffectSizes:
    """`EffectSizes` of an intercept-only `pymare.Dataset` (its y and v; n when it holds one).

    `measure` names the scale of `y` (PyMARE does not record it): "GEN" unless you know it, e.g.
    "PLO" for logit proportions, which also needs `n` only for the Freeman-Tukey back-transform.
    """
    if not is_pymare_dataset(dataset):
        raise TypeError(f"expected a pymare.Dataset, got {type(dataset).__name__}")
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {list(MEASURES)}")
    y, v = np.asarray(dataset.y, dtype=float), np.asarray(dataset.v, dtype=float)
    if y.ndim != 2 or y.shape[1] != 1 or v.shape != y.shape:
        raise ValueError(
            f"the Dataset holds {y.shape[1] if y.ndim == 2 else '?'} parallel data sets (y of shape {y.shape}); "
            "pass one column at a time"
        )
    X = np.asarray(dataset.X, dtype=float)
    if X.shape[1] != 1 or not np.all(X[:, 0] == 1.0):
        names = ", ".join(str(x) for x in getattr(dataset, "X_names", []) or [])
        raise ValueError(
            f"the Dataset has moderators ({names}); rma() fits intercept-only models: use rma_mods(yi, vi, X) "
            "for a meta-regression"
        )
    n = None
    if getattr(dataset, "n", None) is not None:
        raw = np.asarray(dataset.n, dtype=float).ravel()
        if raw.size == y.shape[0]:
            n = raw
    labels = None if studies is None else tuple(str(s) for s in studies)
    return EffectSizes(measure=measure, yi=y[:, 0].copy(), vi=v[:, 0].copy(), n=n, studies=labels)


__all__ = ["to_pymare", "from_pymare", "is_pymare_dataset"]
