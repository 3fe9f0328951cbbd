"""bfloat16: the 16-bit "brain" float (float32's 8 exponent bits, 7 mantissa bits).

NumPy has no bfloat16.  The ``ml_dtypes`` package provides one as a NumPy *user* dtype,
and fnarray uses it, but only as an optional dependency (the ``bfloat16`` extra):
``import fnarray`` never imports it; the first request for bfloat16 (``fa.bfloat16``,
``torch.bfloat16``, ``astype("bfloat16")``, an ml_dtypes array handed to ``fa.asarray``)
does, and names the extra when it is missing.

Two consequences of bfloat16 being a user dtype shape the rest of fnarray:

* its NumPy kind is ``'V'``, not ``'f'``, so "is this floating?" is always asked through
  ``core.shapes.is_float`` / ``is_inexact`` / ``is_differentiable``, never ``dtype.kind``
  (otherwise bfloat16 values would silently get no gradient);
* NumPy's kernels for it are incomplete or imprecise: linalg has none, ``matmul`` returns
  float32, reductions accumulate in bfloat16.  So a primitive applied to bfloat16 operands
  runs its float32 kernel on widened copies and rounds each result to the dtype its
  abstract rule states, which is what XLA does on CPU.  Primitives that only move data or
  run sub-programs declare ``widen_bfloat16=False`` and see the bfloat16 buffers as they are.
"""

from __future__ import annotations

import numpy as np

EXTRA = "bfloat16"
_dtype: np.dtype | None = None
_on_load: list = []  # callbacks run once when bfloat16 is first loaded


def bfloat16_dtype() -> np.dtype:
    """The bfloat16 ``np.dtype``, importing ``ml_dtypes`` on first use."""
    global _dtype
    if _dtype is None:
        try:
            import ml_dtypes
        except ImportError as e:
            raise ImportError(
                "bfloat16 needs the optional package ml_dtypes (NumPy has no bfloat16); "
                f"install it with: pip install 'fnarray[{EXTRA}]'") from e
        _dtype = np.dtype(ml_dtypes.bfloat16)
        for callback in _on_load:
            callback()
    return _dtype


def on_load(callback) -> None:
    """Run ``callback()`` when bfloat16 is loaded (at once if it already is)."""
    _on_load.append(callback)
    if _dtype is not None:
        callback()


def is_bfloat16(dtype) -> bool:
    """Is ``dtype`` (an ``np.dtype`` or a stand-in with ``kind``/``name``) bfloat16?

    Compared with the loaded dtype: NumPy computes ``.name`` of a user dtype in Python
    (microseconds), so the name is read only before bfloat16 is loaded, and a match loads
    it then (ml_dtypes is evidently installed), so its kernels are widened from then on."""
    if dtype is _dtype:
        return True
    if dtype.kind != "V":
        return False
    if _dtype is not None:
        return dtype == _dtype
    return dtype.name == "bfloat16" and bfloat16_dtype() is not None


def is_bfloat16_name(value) -> bool:
    """``"bfloat16"`` (or ml_dtypes' scalar type) before ml_dtypes has been imported."""
    return (value == "bfloat16" if isinstance(value, str)
            else getattr(value, "__name__", None) == "bfloat16" and isinstance(value, type))


def finfo(dtype) -> np.finfo:
    """NumPy's ``finfo`` for any float dtype; ml_dtypes' (a subclass) for bfloat16."""
    if is_bfloat16(dtype):
        import ml_dtypes
        return ml_dtypes.finfo(dtype)
    return np.finfo(dtype)


def _widen(v):
    return v.astype(np.float32) if is_bfloat16(v.dtype) else v


_DTYPE_CACHE_MAX = 4096  # result dtypes remembered per primitive (then computed each time)


def _out_dtypes(prim, cache: dict, vals, params) -> tuple:
    """The result dtypes ``prim``'s abstract rule states for ``vals``.  They depend on the
    operand dtypes and parameters only, so they are cached on those (the abstract rule
    costs more than a small kernel); unhashable parameters are never cached."""
    key = (tuple(v.dtype for v in vals), tuple(params.items()))
    try:
        found = cache.get(key)
    except TypeError:
        key = found = None
    if found is None:
        from fnarray.core.shapes import ShapedArray
        out = prim.abstract(*[ShapedArray(v.shape, v.dtype) for v in vals], **params)
        found = tuple(o.dtype for o in out) if prim.multiple_results else (out.dtype,)
        if key is not None and len(cache) < _DTYPE_CACHE_MAX:
            cache[key] = found
    return found


def _run_widened(prim, native, cache, xp, vals, params):
    """``native`` (``prim``'s own kernel) on float32 copies of the bfloat16 operands, each
    result rounded to the dtype ``prim``'s abstract rule states for the real operands."""
    want = _out_dtypes(prim, cache, vals, params)
    out = native(xp, *[_widen(v) for v in vals], **params)
    if prim.multiple_results:
        return type(out)(o if o.dtype == w else o.astype(w) for o, w in zip(out, want))
    return out if out.dtype == want[0] else out.astype(want[0])


def widen_kernel(prim) -> None:
    """Wrap ``prim.impl`` (once) so that bfloat16 operands go through its float32 kernel.

    Installed on every primitive when bfloat16 is first loaded (and on primitives declared
    after that), so programs that never use bfloat16 pay nothing; ``prim.impl.native`` is
    the kernel as declared."""
    native = prim.impl
    if not prim.widen_bfloat16 or native is None or hasattr(native, "native"):
        return
    cache: dict = {}

    def impl(xp, *vals, **params):
        for v in vals:
            if is_bfloat16(v.dtype):
                return _run_widened(prim, native, cache, xp, vals, params)
        return native(xp, *vals, **params)

    impl.native = native
    prim.impl = impl


def _widen_all_kernels() -> None:
    from fnarray.core.primitive import REGISTRY
    for prim in REGISTRY.values():
        widen_kernel(prim)


def loaded() -> bool:
    """Has bfloat16 been requested in this process (so ``ml_dtypes`` is imported)?"""
    return _dtype is not None


on_load(_widen_all_kernels)
