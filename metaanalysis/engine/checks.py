"""The engine's input checks, one for effect sizes and one for counts, used by every model.

Each lists every problem it finds in one ValueError (naming the study and the field), so a
caller fixing a table sees all of it at once. Numeric numpy arrays take a vectorised path: the
per-study loop runs only when something is wrong (REML at k = 100,000 must not pay for it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class DefaultLabels(Sequence):
    """The labels "1", ..., "k" of unnamed studies, made as strings only when read (at
    k = 100,000 making the strings took longer than the REML fit)."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k

    def __len__(self) -> int:
        return self.k

    def __getitem__(self, i):
        r = range(1, self.k + 1)[i]
        return str(r) if isinstance(r, int) else tuple(map(str, r))

    def __iter__(self):
        return map(str, range(1, self.k + 1))


def _labels(studies, k: int, what: str) -> Sequence[str]:
    labels: Sequence[str] = DefaultLabels(k) if studies is None else tuple(str(s) for s in studies)
    if len(labels) != k:
        raise ValueError(f"'studies' has {len(labels)} labels but there are {k} {what}")
    return labels


def is_number(val) -> bool:
    return isinstance(val, (int, float, np.integer, np.floating)) and not isinstance(val, bool)


def check_effects(yi, vi, studies=None) -> tuple[np.ndarray, np.ndarray, Sequence[str]]:
    """(yi, vi as float arrays, study labels); ValueError listing every non-finite yi and every vi <= 0."""
    if all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "fiu" for a in (yi, vi)):
        ys, vs = yi.astype(float, copy=False), vi.astype(float, copy=False)  # read only, never written
    else:
        try:
            ys, vs = list(yi), list(vi)
        except TypeError:
            raise ValueError("'yi' and 'vi' must be sequences of numbers") from None
    if len(ys) != len(vs):
        raise ValueError(f"'yi' has {len(ys)} values but 'vi' has {len(vs)}")
    if len(ys) == 0:
        raise ValueError("no studies: 'yi' is empty")
    labels = _labels(studies, len(ys), "studies")
    if isinstance(ys, np.ndarray) and isinstance(vs, np.ndarray):
        if not np.flatnonzero(~np.isfinite(ys) | ~np.isfinite(vs) | ~(vs > 0)).size:
            return ys, vs, labels
        ys, vs = ys.tolist(), vs.tolist()
    y, v = np.full(len(ys), np.nan), np.full(len(ys), np.nan)
    problems = []
    for i, (a, c) in enumerate(zip(ys, vs, strict=True)):
        for name, val, arr in (("yi", a, y), ("vi", c, v)):
            if not is_number(val) or not math.isfinite(float(val)):
                problems.append(f"study {labels[i]} (index {i}): '{name}' must be a finite number, got {val!r}")
            else:
                arr[i] = float(val)
        if math.isfinite(v[i]) and v[i] <= 0:
            problems.append(f"study {labels[i]} (index {i}): 'vi' must be > 0, got {float(v[i])!r}")
    if problems:
        raise ValueError("; ".join(problems))
    return y, v, labels


def check_counts(events: Sequence, n: Sequence, studies=None) -> tuple[np.ndarray, np.ndarray, Sequence[str]]:
    """(events, n as float arrays, study labels); ValueError listing every count that is not a
    whole number, every n <= 0 and every event count outside 0..n."""
    events, n = list(events), list(n)
    if len(events) != len(n):
        raise ValueError(f"events has {len(events)} values but n has {len(n)}")
    if len(n) == 0:
        raise ValueError("no studies given")
    names = _labels(studies, len(n), "studies")
    problems = []
    for name, xi, ni in zip(names, events, n, strict=True):
        whole = {}
        for field, v in (("events", xi), ("n", ni)):
            whole[field] = is_number(v) and math.isfinite(v) and float(v) == int(v)
            if not whole[field]:
                problems.append(f"study {name!r}: {field} = {v!r} is not a whole number")
        if whole["n"] and ni <= 0:
            problems.append(f"study {name!r}: n = {ni} must be positive")
        elif whole["n"] and whole["events"] and not 0 <= xi <= ni:
            problems.append(f"study {name!r}: events = {xi} must lie between 0 and n = {ni}")
    if problems:
        raise ValueError("; ".join(problems))
    return np.asarray(events, dtype=float), np.asarray(n, dtype=float), names


__all__ = ["check_effects", "check_counts", "is_number"]
