"""Discrete Fourier transforms: ``fft`` (complex to complex, forward or inverse), ``rfft``
(real to half spectrum) and ``irfft`` (half spectrum to real), each over a tuple of axes
whose sizes are already final (``fa.fft`` pads or truncates before binding).

All three are linear, so the JVP applies the primitive to the tangent and the VJP applies
the transpose to the cotangent.  Complex convention (JAX's, as everywhere in fnarray): a
cotangent pairs with a tangent through ``<ct, t> = Re sum(ct * t)``, so a VJP is the
transpose of the map, without conjugation.  The transpose ``L^T`` of a map relates to its
adjoint (conjugate transpose) ``L^*`` by ``L^T(ct) = conj(L^*(conj(ct)))``; the adjoints are:

* ``fft`` with normalisation ``norm``: the inverse transform with the dual normalisation
  (``backward`` <-> ``forward``, ``ortho`` unchanged) -- so, the DFT matrix being symmetric,
  the transpose is the same transform;
* ``rfft``: ``irfft`` with the dual normalisation of the cotangent whose interior bins
  (those with a mirrored partner) are halved;
* ``irfft``: ``rfft`` with the dual normalisation, interior bins doubled.  ``irfft`` reads
  only the real part of the zero (and, for even length, the Nyquist) bin, and its adjoint
  returns a real cotangent there, matching.
"""

from __future__ import annotations

import numpy as np

from fnarray import api as fa
from fnarray.api._convert import device_of
from fnarray.core.primitive import declare
from fnarray.core.shapes import ShapedArray
from fnarray.ops._util import linear_jvp, move_bdim

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _complex_of(dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def _real_of(dtype) -> np.dtype:
    return np.zeros((), dtype).real.dtype


def _shift(axes):
    return tuple(a + 1 for a in axes)


def _batch(prim):
    def rule(vals, dims, *, axes, **params):
        return prim.bind(move_bdim(vals[0], dims[0], 0), axes=_shift(axes), **params), 0
    return rule


def _half_weights(ct, n: int, axis: int):
    """Per-bin weights along ``axis`` of a half spectrum of a length-``n`` signal: 1 for the
    zero bin and (even ``n``) the Nyquist bin, 1/2 for the interior bins."""
    w = np.full(n // 2 + 1, 0.5)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    shape = [1] * ct.ndim
    shape[axis] = w.size
    return fa.asarray(w.reshape(shape).astype(_real_of(ct.dtype)), device=device_of(ct))


# --- complex fft --------------------------------------------------------------------------

def _fft_impl(xp, x, *, axes, inverse, norm):
    kernel = xp.fft.ifftn if inverse else xp.fft.fftn
    return kernel(x, axes=axes, norm=norm).astype(x.dtype, copy=False)


def _fft_vjp(ct, x, *, out, axes, inverse, norm):
    return (fft.bind(fa.astype(ct, out.dtype), axes=axes, inverse=inverse, norm=norm),)


fft = declare("fft", impl=_fft_impl, abstract=lambda a, **_: a, jvp=None, vjp=_fft_vjp,
              batch=None)
fft.jvp = lambda pr, tg, **p: linear_jvp(fft, pr, tg, **p)
fft.batch = _batch(fft)


# --- real to half spectrum ------------------------------------------------------------------

def _rfft_impl(xp, x, *, axes, norm):
    return xp.fft.rfftn(x, axes=axes, norm=norm).astype(_complex_of(x.dtype), copy=False)


def _rfft_abstract(a, *, axes, norm):
    shape = list(a.shape)
    shape[axes[-1]] = shape[axes[-1]] // 2 + 1
    return ShapedArray(tuple(shape), _complex_of(a.dtype))


def _rfft_vjp(ct, x, *, out, axes, norm):
    n = x.shape[axes[-1]]
    ct = fa.conj(fa.astype(ct, out.dtype)) * _half_weights(ct, n, axes[-1])
    g = irfft.bind(ct, axes=axes, n=n, norm=_DUAL[norm])
    # float16/bfloat16 input: the spectrum (and so g) is complex64/float32; cast back
    return (g if g.dtype == x.dtype else fa.astype(g, x.dtype),)


rfft = declare("rfft", impl=_rfft_impl, abstract=_rfft_abstract, jvp=None, vjp=_rfft_vjp,
               batch=None)
rfft.jvp = lambda pr, tg, **p: linear_jvp(rfft, pr, tg, **p)
rfft.batch = _batch(rfft)


# --- half spectrum to real ------------------------------------------------------------------

def _irfft_impl(xp, x, *, axes, n, norm):
    s = [x.shape[a] for a in axes[:-1]] + [n]
    return xp.fft.irfftn(x, s=s, axes=axes, norm=norm).astype(_real_of(x.dtype), copy=False)


def _irfft_abstract(a, *, axes, n, norm):
    if a.shape[axes[-1]] != n // 2 + 1:
        raise ValueError(f"irfft: the half spectrum along axis {axes[-1]} has "
                         f"{a.shape[axes[-1]]} bins; a length-{n} signal needs {n // 2 + 1}")
    shape = list(a.shape)
    shape[axes[-1]] = n
    return ShapedArray(tuple(shape), _real_of(a.dtype))


def _irfft_vjp(ct, x, *, out, axes, n, norm):
    spectrum = rfft.bind(fa.astype(ct, out.dtype), axes=axes, norm=_DUAL[norm])
    return (fa.conj(spectrum / _half_weights(spectrum, n, axes[-1])),)


irfft = declare("irfft", impl=_irfft_impl, abstract=_irfft_abstract, jvp=None,
                vjp=_irfft_vjp, batch=None)
irfft.jvp = lambda pr, tg, **p: linear_jvp(irfft, pr, tg, **p)
irfft.batch = _batch(irfft)
