"""Second-order forward-mode differentiation over numpy arrays, for the GLMM's Newton fit.

A `Jet` carries a value array together with its gradient and Hessian with respect to
a few parameters (here beta0 and tau), and every operation applies the chain rule:
for c = f(a), grad c = f'(a) grad a and hess c = f'(a) hess a + f''(a) grad a grad a'.
The derivatives are therefore exact (to rounding) rather than finite differences, and
the arithmetic vectorises over studies and quadrature nodes like the plain values do.
Shapes: value S, grad (m,) + S, hess (m, m) + S for m parameters.
"""

from __future__ import annotations

import numpy as np
from scipy import special


class Jet:
    __slots__ = ("v", "g", "h")
    __array_ufunc__ = None  # ndarray (op) Jet defers to the Jet's reflected operator

    def __init__(self, v, g, h):
        self.v, self.g, self.h = v, g, h

    @classmethod
    def variables(cls, values) -> list[Jet]:
        """Independent variables x_j = values[j] with unit gradients."""
        m = len(values)
        eye = np.eye(m)
        return [cls(np.asarray(float(x)), eye[j].copy(), np.zeros((m, m))) for j, x in enumerate(values)]

    @classmethod
    def const(cls, v, like: Jet) -> Jet:
        v = np.asarray(v, dtype=float)
        m = like.g.shape[0]
        return cls(v, np.zeros((m,) + v.shape), np.zeros((m, m) + v.shape))

    # broadcasting helpers: the parameter axes lead, the data axes follow
    def __getitem__(self, key) -> Jet:
        key = key if isinstance(key, tuple) else (key,)
        return Jet(self.v[key], self.g[(slice(None),) + key], self.h[(slice(None), slice(None)) + key])

    def sum(self, axis: int | None = None) -> Jet:
        if axis is None:
            return Jet(
                self.v.sum(),
                self.g.reshape(self.g.shape[0], -1).sum(-1),
                self.h.reshape(self.h.shape[:2] + (-1,)).sum(-1),
            )
        a = axis % self.v.ndim
        return Jet(self.v.sum(a), self.g.sum(a + 1), self.h.sum(a + 2))

    def _chain(self, f0, f1, f2) -> Jet:
        """f(self) given f, f', f'' evaluated at self.v."""
        g = f1 * self.g
        h = f1 * self.h + f2 * (self.g[:, None] * self.g[None, :])
        return Jet(f0, g, h)

    def _lift(self, ndim: int) -> Jet:
        """The same jet with leading unit data axes, so it broadcasts against `ndim` data axes."""
        extra = ndim - self.v.ndim
        if extra <= 0:
            return self
        m = self.g.shape[0]
        shape = (1,) * extra + self.v.shape
        return Jet(self.v.reshape(shape), self.g.reshape((m,) + shape), self.h.reshape((m, m) + shape))

    def __neg__(self):
        return Jet(-self.v, -self.g, -self.h)

    def __add__(self, o):
        if isinstance(o, Jet):
            nd = max(self.v.ndim, o.v.ndim)
            a, b = self._lift(nd), o._lift(nd)
            return Jet(a.v + b.v, a.g + b.g, a.h + b.h)
        o = np.asarray(o, dtype=float)
        if np.broadcast_shapes(o.shape, self.v.shape) == self.v.shape:  # derivatives unchanged
            return Jet(self.v + o, self.g, self.h)
        a = self._lift(o.ndim)
        v = a.v + o
        return Jet(v, np.broadcast_to(a.g, a.g.shape[:1] + v.shape), np.broadcast_to(a.h, a.h.shape[:2] + v.shape))

    __radd__ = __add__

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        if isinstance(o, Jet):
            nd = max(self.v.ndim, o.v.ndim)
            a, b = self._lift(nd), o._lift(nd)
            g = a.v * b.g + b.v * a.g
            h = a.v * b.h + b.v * a.h + a.g[:, None] * b.g[None, :] + b.g[:, None] * a.g[None, :]
            return Jet(a.v * b.v, g, h)
        o = np.asarray(o, dtype=float)
        a = self._lift(o.ndim)
        return Jet(a.v * o, a.g * o, a.h * o)

    __rmul__ = __mul__

    def __truediv__(self, o):
        if isinstance(o, Jet):
            return self * o.reciprocal()
        return self * (1.0 / o)

    def reciprocal(self) -> Jet:
        r = 1.0 / self.v
        return self._chain(r, -r * r, 2.0 * r * r * r)

    def square(self) -> Jet:
        return self * self


def exp(a: Jet) -> Jet:
    e = np.exp(a.v)
    return a._chain(e, e, e)


def log(a: Jet) -> Jet:
    r = 1.0 / a.v
    return a._chain(np.log(a.v), r, -r * r)


def rsqrt(a: Jet) -> Jet:
    """a^(-1/2)."""
    s = 1.0 / np.sqrt(a.v)
    return a._chain(s, -0.5 * s / a.v, 0.75 * s / (a.v * a.v))


def expit(a: Jet) -> Jet:
    m = special.expit(a.v)
    d = m * (1.0 - m)
    return a._chain(m, d, d * (1.0 - 2.0 * m))


def softplus(a: Jet) -> Jet:
    """log(1 + e^a) without overflow; its derivatives are expit(a) and expit(a)(1 - expit(a))."""
    m = special.expit(a.v)
    return a._chain(np.logaddexp(0.0, a.v), m, m * (1.0 - m))


__all__ = ["Jet", "exp", "log", "rsqrt", "expit", "softplus"]
