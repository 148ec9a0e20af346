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

import numpy as np


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


__all__ = ["Projection"]
