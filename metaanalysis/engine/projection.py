"""The weighted residual-maker P = W - W X (X'WX)^-1 X'W without forming it.

metafor's formulas for tau^2 and Q are written with P (k x k). Every quantity they need
is a quadratic form or a trace of P against diagonal matrices, and with the thin QR
factor W^1/2 X = Q R (Q is k x p) they reduce to sums over studies and p x p products:

    P y        = W^1/2 (I - Q Q') W^1/2 y
    tr(P D P)  = sum(g w) - 2 sum(g w h) + tr(Q'GQ Q'WQ),           G = W D
    tr(P D P D)= sum(g^2) - 2 sum(g^2 h) + ||Q'GQ||_F^2
    tr(P)      = sum(w) - sum(w h)

with h_i = ||Q_i||^2 (the hat values) and D diagonal. Cost O(k p^2) and memory O(k p)
where the dense P cost O(k^2) memory (74.5 GiB at k = 100,000). The sums are
algebraically those of the dense formulas, so results agree to rounding.
"""

from __future__ import annotations

import threading

import numpy as np

# Work space of InterceptSums: k-vectors handed back by `close()` are kept per thread for the
# next fit of the same k (fresh pages cost more than the passes over them at k = 100,000). Only
# vectors of at most _POOL_MAX elements are kept, at most _POOL_KEEP of them, one k at a time.
_POOL = threading.local()
_POOL_MAX, _POOL_KEEP = 1 << 20, 8


def _take(k: int) -> np.ndarray:
    free = getattr(_POOL, "free", None)
    if free and free[0].shape[0] == k:
        return free.pop()
    return np.empty(k)


def _give(*bufs: np.ndarray | None) -> None:
    for b in bufs:
        if b is None or b.shape[0] > _POOL_MAX:
            continue
        free = getattr(_POOL, "free", None)
        if not free or free[0].shape[0] != b.shape[0]:
            free = _POOL.free = []
        if len(free) < _POOL_KEEP:
            free.append(b)


class Projection:
    """P for weights `w` (length k) and design `X` (k x p). Without moderators (X a column
    of ones) every quantity is a weighted sum, and the factorisation is skipped."""

    __slots__ = ("w", "s", "Q", "_h", "intercept_only", "_wsum")

    def __init__(self, w: np.ndarray, X: np.ndarray):
        self.w = w
        self.intercept_only = X.shape[1] == 1 and bool(np.all(X[:, 0] == 1.0))
        if self.intercept_only:
            self._wsum = float(w.sum())
            self.s = self.Q = self._h = None  # h = w / sum(w), made when needed
        else:
            self.s = np.sqrt(w)
            self.Q = np.linalg.qr(self.s[:, None] * X, mode="reduced")[0]
            self._h = np.einsum("ij,ij->i", self.Q, self.Q)

    @property
    def h(self) -> np.ndarray:
        """Hat values, the diagonal of Q Q'."""
        if self._h is None:
            self._h = self.w / self._wsum
        return self._h

    def residual(self, y: np.ndarray) -> np.ndarray:
        """P y."""
        if self.intercept_only:
            return self.w * (y - float(self.w @ y) / self._wsum)
        s, Q = self._factors()
        sy = s * y
        return s * (sy - Q @ (Q.T @ sy))

    def quad(self, y: np.ndarray) -> float:
        """y' P y (the weighted residual sum of squares)."""
        if self.intercept_only:
            r = y - float(self.w @ y) / self._wsum
            return float(self.w @ (r * r))
        s, Q = self._factors()
        sy = s * y
        r = sy - Q @ (Q.T @ sy)
        return float(r @ r)

    def trace(self) -> float:
        """tr(P)."""
        return float(self.w.sum() - self.w @ self.h)

    def trace_pd(self, d: np.ndarray) -> float:
        """tr(P D) = sum_i P_ii d_i, P_ii = w_i (1 - h_i)."""
        return float(np.sum(self.w * (1.0 - self.h) * d))

    def _qgq(self, g: np.ndarray) -> np.ndarray:
        if self.intercept_only:  # Q = sqrt(w / sum w): Q'GQ = sum(g h)
            return np.array([[float(np.sum(g * self.h))]])
        _, Q = self._factors()
        return (Q.T * g) @ Q

    def _factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(sqrt(w), Q) of a design with moderators (made in __init__ whenever X is not one column of ones)."""
        assert self.s is not None and self.Q is not None
        return self.s, self.Q

    def trace_pdp(self, d: np.ndarray | float = 1.0) -> float:
        """tr(P D P) = sum_ij P_ij^2 d_j for diagonal D (d = 1: tr(P^2) = sum(P * P))."""
        w = self.w
        g = w * d
        cross = np.sum(self._qgq(g) * self._qgq(w))  # tr(Q'GQ Q'WQ), both symmetric
        return float(np.sum(g * w) - 2.0 * np.sum(g * w * self.h) + cross)

    def trace_pdpd(self, d: np.ndarray | float = 1.0) -> float:
        """tr(P D P D) = sum((PD) * (PD)') for diagonal D."""
        g = self.w * d
        QgQ = self._qgq(g)
        return float(np.sum(g * g) - 2.0 * np.sum(g * g * self.h) + np.sum(QgQ * QgQ))


class InterceptSums:
    """Every sum the intercept-only model needs at a given tau^2, from a few passes over the
    studies into buffers that are reused between calls (issue 19: REML with its Q-profile CI at
    k = 100,000, where allocating fresh k-vectors cost more than the arithmetic).

    With w = 1 / (v + tau^2) and the outcomes centred at c, y_c = y - c:

        S_j = sum w y_c^j,  T_j = sum w^2 y_c^j,  U_0 = sum w^3,  m = S_1 / S_0,  b = c + m,
        y'Py = Q = S_2 - m S_1,   (Py)'(Py) = T_2 - 2 m T_1 + m^2 T_0,
        tr(P) = S_0 - T_0 / S_0,  tr(P^2) = T_0 - 2 U_0 / S_0 + (T_0 / S_0)^2,

    the quantities `Projection` computes for a column of ones, algebraically. The expanded
    forms lose digits when the weighted mean lies far from the centre (m S_1 or m^2 T_0 much
    larger than the residual sum); then the centre moves to the weighted mean and the sums are
    taken again, so at least 13 significant digits remain. Use it as a context manager (or call
    `close()`): its k-vectors then go back to a per-thread work space for the next fit.
    """

    __slots__ = ("y", "v", "yc", "yc2", "w", "scratch", "centre")

    _RECENTRE = 1e3  # cancellation factor above which the centre moves (3 of 16 digits)

    def __init__(self, y: np.ndarray, v: np.ndarray, *, centred: bool = False, squares: bool = False):
        """`centred`: y is already centred (used as it is until a recentring copies it);
        `squares`: keep y_c^2 too (one more k-vector, one pass less per evaluation of Q)."""
        self.y = np.ascontiguousarray(y, dtype=float)
        self.v = np.ascontiguousarray(v, dtype=float)
        k = self.y.shape[0]
        self.w = _take(k)
        self.scratch = _take(k)
        self.yc2 = _take(k) if squares else None
        if centred:
            self.yc, self.centre = self.y, 0.0
            if self.yc2 is not None:
                np.multiply(self.yc, self.yc, out=self.yc2)
        else:
            self.yc = _take(k)
            self._set_centre(float(self.y.sum()) / k)

    def __enter__(self) -> InterceptSums:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Hand the work vectors back (the object is unusable afterwards)."""
        _give(self.w, self.scratch, self.yc2, None if self.yc is self.y else self.yc)
        self.w = self.scratch = self.yc = self.yc2 = None  # type: ignore[assignment]

    def _set_centre(self, c: float) -> None:
        if self.yc is self.y:
            self.yc = _take(self.y.shape[0])
        np.subtract(self.y, c, out=self.yc)
        if self.yc2 is not None:
            np.multiply(self.yc, self.yc, out=self.yc2)
        self.centre = c

    def _weights(self, tau2: float) -> np.ndarray:
        w = self.w
        np.add(self.v, tau2, out=w)
        np.divide(1.0, w, out=w)
        return w

    def _first(self, w: np.ndarray) -> tuple[float, float, float]:
        S0, S1 = float(w.sum()), float(w @ self.yc)
        if self.yc2 is not None:
            return S0, S1, float(w @ self.yc2)
        np.multiply(w, self.yc, out=self.scratch)
        return S0, S1, float(self.scratch @ self.yc)

    def _sums(self, tau2: float) -> tuple[float, float, float]:
        w = self._weights(tau2)
        S0, S1, S2 = self._first(w)
        m = S1 / S0
        if m * S1 > self._RECENTRE * abs(S2 - m * S1):
            self._set_centre(self.centre + m)
            S0, S1, S2 = self._first(w)
        return S0, S1, S2

    def q(self, tau2: float) -> float:
        """Q(tau^2) = sum w (y - b)^2, b the weighted mean."""
        S0, S1, S2 = self._sums(tau2)
        return S2 - S1 * S1 / S0

    def mean(self, tau2: float) -> tuple[float, float, float]:
        """(weighted mean b, sum of weights, Q)."""
        S0, S1, S2 = self._sums(tau2)
        return self.centre + S1 / S0, S0, S2 - S1 * S1 / S0

    def trace(self, tau2: float) -> float:
        """tr(P) = sum w - sum w^2 / sum w."""
        w = self._weights(tau2)
        W = float(w.sum())
        return W - float(w @ w) / W

    def log_sum(self, tau2: float) -> float:
        """sum log(v + tau^2), as the logs of products of 32 terms where they stay in range
        (a quarter of the time of k logarithms; the plain sum otherwise)."""
        buf = self.scratch
        np.add(self.v, tau2, out=buf)
        full = buf.shape[0] - buf.shape[0] % 32
        prods = np.multiply.reduce(buf[:full].reshape(-1, 32), axis=1)
        if prods.size and not (float(prods.min()) > 1e-280 and float(prods.max()) < 1e280):
            return float(np.log(buf).sum())
        return float(np.log(prods).sum()) + float(np.log(buf[full:]).sum())

    def reml_terms(self, tau2: float) -> dict[str, float]:
        """The terms of a Fisher scoring step: sum w, sum w^2, y'Py, (Py)'(Py), tr(P), tr(P^2)."""
        w = self._weights(tau2)
        for _ in range(2):
            S0, S1 = float(w.sum()), float(w @ self.yc)
            wy = self.scratch
            np.multiply(w, self.yc, out=wy)
            S2, T0, T1, T2 = float(wy @ self.yc), float(w @ w), float(wy @ w), float(wy @ wy)
            m = S1 / S0
            q, pypy = S2 - m * S1, T2 - 2.0 * m * T1 + m * m * T0
            if m * S1 <= self._RECENTRE * abs(q) and m * m * T0 <= self._RECENTRE * abs(pypy):
                break
            self._set_centre(self.centre + m)
        np.multiply(w, w, out=self.scratch)
        U0 = float(self.scratch @ w)
        h2 = T0 / S0
        return dict(W=S0, W2=T0, q=q, pypy=pypy, trace=S0 - h2, trace_pp=T0 - 2.0 * U0 / S0 + h2 * h2)


__all__ = ["Projection", "InterceptSums"]
