"""How far float32 arithmetic can drift from a float64 computation: bounds derived op by op.

A :class:`Bounded` is a float64 value with a bound on the error a float32 evaluation of the
same expression may carry. Each operation adds its own rounding to the errors of its
operands (first-order forward error analysis), with the unit roundoff ``u = 2**-24``:

==================  ==========================================================================
``a + b``, ``a - b``  ``e_a + e_b + u (|a| + |b|)``: bounds the rounding of the sum in any order
                      of evaluation (a rounded partial sum is at most ``|a| + |b|``)
``a * b``             ``|b| e_a + |a| e_b + e_a e_b + u |ab|``
``a / b``             ``(e_a + |a/b| e_b) / (|b| - e_b) + u |a/b|``
``sqrt(a)``           ``sqrt(a + e_a) - sqrt(a) + u sqrt(a)``: valid down to ``a = 0``, where
                      the relative error of a square root is unbounded
``c ** t``            ``(t + |t ln c| + 2) u c**t`` for a bias correction ``beta ** t`` computed
                      in float32 (Optax does; torch computes it in float64, which is better)
a Python float ``c``  rounded once to float32 when it meets a float32 tensor: ``|fl(c) - c| <= u |c|``
==================  ==========================================================================

Every operation also adds ``TINY = 2**-126``, float32's smallest normal number: below it
XLA and oneDNN flush to zero, which is an absolute error of up to ``TINY``.

Two float32 implementations of the same rule may order its operations differently (torch's
``lerp`` against Optax's weighted sum), contract a multiply and an add into one FMA (one
rounding fewer) or fold constants; each such variant rounds at most as often, at partial
results at most as large, as the bound above counts for one of them. The parity checks
hold a backend to ``MARGIN`` times the bound, to cover that (common/parity.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

U = 2.0**-24  # float32's unit roundoff: |fl(x) - x| <= U |x| for round to nearest
TINY = 2.0**-126  # float32's smallest normal number: flush-to-zero may lose this much
MARGIN = 2.0  # how much larger than the bound of one evaluation order a check allows


class Bounded:
    """A float64 array and a bound on the error of evaluating the same expression in float32."""

    def __init__(self, value, error=0.0) -> None:
        self.value = np.asarray(value, dtype=np.float64)
        self.error = np.broadcast_to(np.asarray(error, dtype=np.float64), self.value.shape)

    @classmethod
    def constant(cls, c: Any) -> "Bounded":
        """A constant of the computation, rounded once to float32 where it is used (1 stays exact)."""
        if isinstance(c, Bounded):
            return c
        c = np.asarray(c, dtype=np.float64)
        return cls(c, np.abs(c.astype(np.float32).astype(np.float64) - c))

    def __add__(self, other) -> "Bounded":
        other = Bounded.constant(other)
        return Bounded(self.value + other.value,
                       self.error + other.error + U * (np.abs(self.value) + np.abs(other.value)) + TINY)

    __radd__ = __add__

    def __neg__(self) -> "Bounded":
        return Bounded(-self.value, self.error)

    def __sub__(self, other) -> "Bounded":
        return self + (-Bounded.constant(other))

    def __rsub__(self, other) -> "Bounded":
        return Bounded.constant(other) + (-self)

    def __mul__(self, other) -> "Bounded":
        other = Bounded.constant(other)
        value = self.value * other.value
        error = (np.abs(other.value) * self.error + np.abs(self.value) * other.error + self.error * other.error
                 + U * np.abs(value) + TINY)
        return Bounded(value, error)

    __rmul__ = __mul__

    def __truediv__(self, other) -> "Bounded":
        other = Bounded.constant(other)
        value = self.value / other.value
        margin = np.abs(other.value) - other.error
        if np.any(margin <= 0):
            raise ValueError("a divisor's error bound reaches zero: the quotient is not bounded")
        error = (self.error + np.abs(value) * other.error) / margin + U * np.abs(value) + TINY
        return Bounded(value, error)

    def __rtruediv__(self, other) -> "Bounded":
        return Bounded.constant(other) / self

    def __pow__(self, exponent) -> "Bounded":
        if exponent != 0.5:
            raise NotImplementedError("Bounded supports ** 0.5 (a square root) only")
        return self.sqrt()

    def __rpow__(self, base) -> "Bounded":
        """``base ** t`` for an exact step count ``t`` (a bias correction), computed in float32."""
        if np.any(self.error):
            raise NotImplementedError("an exponent must be exact (a step count)")
        value = float(base) ** self.value
        return Bounded(value, (self.value + np.abs(self.value * np.log(base)) + 2) * U * value + TINY)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """``np.sqrt(x)``, which the optimizer rules call, is :meth:`sqrt`; NumPy's other ufuncs
        are refused (an ndarray operand would be taken for exact, which no input is)."""
        if ufunc is np.sqrt and method == "__call__" and inputs == (self,) and not kwargs:
            return self.sqrt()
        return NotImplemented

    def sqrt(self) -> "Bounded":
        value = np.sqrt(self.value)
        return Bounded(value, np.sqrt(self.value + self.error) - value + U * value + TINY)


def replay(spec, params: dict[str, np.ndarray], gradient_steps: list[dict[str, np.ndarray]]
           ) -> tuple[dict[str, Bounded], dict[str, Bounded]]:
    """The optimizer ``spec``'s updates from ``params``, one per entry of ``gradient_steps``, in
    float64 with their float32 rounding bounds: ``({param: Bounded}, {"<slot>.<param>": Bounded})``.

    The parameters and gradients are the exact float32 inputs every backend is given, so the
    bounds start at zero; the state starts at zero, as every backend's does."""
    values = {name: Bounded(p) for name, p in params.items()}
    state = {name: {slot: Bounded(np.zeros_like(p, dtype=np.float64)) for slot in spec.slots}
             for name, p in params.items()}
    for t, grads in enumerate(gradient_steps, start=1):
        for name in values:
            values[name], state[name] = spec.update(values[name], Bounded(grads[name]), state[name], Bounded(t))
    return values, {f"{slot}.{name}": b for name, slots in state.items() for slot, b in slots.items()}
