"""Every primitive in the registry, checked through its samples (``tests/samples``).

For each primitive:

* it has samples and every rule slot filled (no "not implemented for this mode" holes);
* differentiable ones, in float64 over hypothesis-drawn samples: JVP against central finite
  differences, VJP against JVP through the dot-product identity, second order
  (``check_grads(order=2)``: the JVP and VJP functions differentiated again), and ``vmap`` of
  the JVP against a Python loop;
* all of them: ``vmap`` with the batch axis at drawn positions on a drawn subset of the
  operands equals stacking a Python loop over the examples;
* where the sample module gives a NumPy reference (``REFERENCES``), the kernel matches it.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fnarray as fa
import tests.samples as samples_pkg
from fnarray.core.primitive import REGISTRY
from fnarray.testing import check_grads, check_jvp, check_vjp
from tests.samples import all_samples

SAMPLES = all_samples()
NAMES = sorted(REGISTRY)
DIFFERENTIABLE = [n for n in NAMES if REGISTRY[n].differentiable]


def _references() -> dict:
    refs = {}
    for mod in pkgutil.iter_modules(samples_pkg.__path__):
        m = importlib.import_module(f"{samples_pkg.__name__}.{mod.name}")
        refs.update(getattr(m, "REFERENCES", {}))
    return refs


REFERENCES = _references()


def _sample(name, data):
    if name not in SAMPLES:
        pytest.fail(f"primitive {name!r} has no samples: add an entry to SAMPLES in "
                    f"tests/samples/<family>.py")
    return data.draw(SAMPLES[name](), label=f"{name} sample")


def _bind(prim, args, params) -> list:
    out = prim.bind(*args, **params)
    return list(out) if prim.multiple_results else [out]


def _function_of_diff(prim, sample):
    """``(f, diff_args)``: ``f(*diff_args)`` binds ``prim`` with the other operands fixed."""
    args = [fa.asarray(a, copy=False) for a in sample.args]

    def f(*diff):
        full = list(args)
        for i, x in zip(sample.diff, diff):
            full[i] = x
        return _bind(prim, full, sample.params)

    return f, [args[i] for i in sample.diff]


# --- completeness ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_primitive_has_samples(name):
    assert name in SAMPLES, (f"primitive {name!r} has no samples: add an entry to SAMPLES in "
                             f"tests/samples/<family>.py")


@pytest.mark.parametrize("name", NAMES)
def test_primitive_has_every_rule(name):
    missing = REGISTRY[name].missing_rules()
    assert not missing, f"primitive {name!r} has empty rule slots: {missing}"


def test_samples_name_registered_primitives():
    unknown = sorted(set(SAMPLES) - set(REGISTRY))
    assert not unknown, f"samples for primitives that do not exist: {unknown}"


# --- derivatives -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=12)
@given(data=st.data())
def test_jvp_matches_finite_differences(name, data):
    sample = _sample(name, data)
    if "fwd" not in sample.modes:
        return  # no derivative by design (pure_callback); its error is tested elsewhere
    f, xs = _function_of_diff(REGISTRY[name], sample)
    check_jvp(f, xs, name=name)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=12)
@given(data=st.data())
def test_vjp_matches_jvp(name, data):
    sample = _sample(name, data)
    if "rev" not in sample.modes:
        return  # forward-only by design (while); its reverse-mode error is tested elsewhere
    f, xs = _function_of_diff(REGISTRY[name], sample)
    check_vjp(f, xs, name=name)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=5)
@given(data=st.data())
def test_second_order(name, data):
    sample = _sample(name, data)
    if not sample.modes:
        return
    f, xs = _function_of_diff(REGISTRY[name], sample)
    check_grads(f, xs, order=2, modes=sample.modes)


# --- batching --------------------------------------------------------------------------------

def _variant(a: np.ndarray, b: int) -> np.ndarray:
    """Example ``b`` of a batch built from ``a``: its elements rotated by ``b`` places.

    A rotation keeps every property the samples guarantee (domains, index ranges, distinct
    values, grids that avoid ties) while making the examples differ."""
    return np.roll(a.reshape(-1), b).reshape(a.shape) if a.size else a


def _check_vmap(fn, args: list, batchable, data):
    """``vmap(fn)`` with a drawn batch size, subset of batched operands and axis positions
    equals stacking ``fn`` over the examples."""
    hosts = [np.asarray(a) for a in args]
    chosen = data.draw(st.sets(st.sampled_from(sorted(batchable)), min_size=1), label="batched")
    size = data.draw(st.integers(1, 3), label="batch size")
    in_axes = [data.draw(st.integers(0, hosts[i].ndim), label=f"axis of operand {i}")
               if i in chosen else None for i in range(len(args))]
    inputs = [a if d is None else fa.asarray(np.stack([_variant(h, b) for b in range(size)], d))
              for a, h, d in zip(args, hosts, in_axes)]
    got = fa.vmap(lambda *xs: fn(*xs), in_axes=tuple(in_axes))(*inputs)
    loop = [fn(*[a if d is None else fa.asarray(_variant(h, b))
                 for a, h, d in zip(args, hosts, in_axes)]) for b in range(size)]
    for k, g in enumerate(got):
        expected = np.stack([np.asarray(row[k]) for row in loop])
        g = np.asarray(g)
        assert g.shape == expected.shape, (f"vmap output {k}: shape {g.shape}, loop gives "
                                           f"{expected.shape} (in_axes={in_axes})")
        assert g.dtype == expected.dtype, f"vmap output {k}: dtype {g.dtype} vs {expected.dtype}"
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"vmap output {k} (in_axes={in_axes}) vs a loop")


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=12)
@given(data=st.data())
def test_vmap_matches_loop(name, data):
    prim = REGISTRY[name]
    sample = _sample(name, data)
    args = [fa.asarray(a, copy=False) for a in sample.args]
    batchable = range(len(args)) if sample.batchable is None else sample.batchable
    _check_vmap(lambda *xs: _bind(prim, xs, sample.params), args, batchable, data)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=4)
@given(data=st.data())
def test_vmap_of_jvp_matches_loop(name, data):
    sample = _sample(name, data)
    if "fwd" not in sample.modes:
        return
    f, xs = _function_of_diff(REGISTRY[name], sample)
    rng = np.random.default_rng(0)
    ts = [fa.asarray(rng.standard_normal(x.shape).astype(x.dtype)) for x in xs]
    n = len(xs)

    def f_jvp(*pt):
        out, t_out = fa.jvp(f, tuple(pt[:n]), tuple(pt[n:]))
        return list(out) + list(t_out)

    _check_vmap(f_jvp, xs + ts, range(2 * n), data)


# --- values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REFERENCES))
@settings(max_examples=12)
@given(data=st.data())
def test_kernel_matches_numpy_reference(name, data):
    sample = _sample(name, data)
    got = np.asarray(_bind(REGISTRY[name], [fa.asarray(a, copy=False) for a in sample.args],
                           sample.params)[0])
    expected = np.asarray(REFERENCES[name](*sample.args, **sample.params))
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype, f"{name}: dtype {got.dtype}, NumPy gives {expected.dtype}"
    np.testing.assert_array_equal(got, expected)


# --- complex inputs --------------------------------------------------------------------------
# Derivatives of complex inputs follow JAX's convention (``fnarray.testing``: a VJP is the
# transpose of the JVP under ``Re sum(ct * t)``).  Every differentiable primitive is checked
# on its samples with the differentiated operands made complex, except those whose kernels
# refuse complex operands (they must raise ``TypeError``).

REAL_KERNELS = {"atan2", "copysign", "hypot", "rem", "fmod", "erf", "rfft", "lgamma", "digamma",
                "polygamma",
                "staged_call"}  # its programs are traced for one (real) signature
COMPLEX = [n for n in DIFFERENTIABLE if n not in REAL_KERNELS]


def _projectors(v):
    """``v[..., :, i] v[..., :, i]^H`` for each column ``i``: invariant under column phases."""
    return fa.expand_dims(v, -2) * fa.conj(fa.expand_dims(v, -3))


def _outer_pairs(u, vh):
    """``u[..., :, i] vh[..., i, :]`` for each ``i``: invariant under a common phase of
    ``u[..., :, i]`` and ``vh[..., i, :]^H``."""
    return fa.expand_dims(u, -2) * fa.expand_dims(fa.matrix_transpose(vh), -3)


# Outputs defined only up to phases on complex input are compared through phase-invariant
# functions of them (complex eigenvectors: their projectors; singular vectors: the outer
# products of each pair).
GAUGE_INVARIANT = {"eigh": lambda w, v: [w, _projectors(v)],
                   "svd": lambda u, s, vh: [s, _outer_pairs(u, vh)]}


def _complex_function(name, sample):
    f, xs = _function_of_diff(REGISTRY[name], sample)
    if name in GAUGE_INVARIANT:
        return (lambda *d: GAUGE_INVARIANT[name](*f(*d))), xs
    return f, xs


def _complex_sample(name, data):
    """A sample whose float differentiated operands get an imaginary part with magnitude in
    [0.05, 0.5]: small enough to keep every sample clear of its op's branch cuts, and never
    0, so that no input is real-valued (LAPACK's complex QR switches branches there)."""
    sample = _sample(name, data)
    args = list(sample.args)
    for i in sample.diff:
        a = np.asarray(args[i])
        if a.dtype.kind == "f":
            im = data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(0.05, 0.5)),
                           label=f"imaginary part of operand {i}")
            sign = data.draw(hnp.arrays(np.float64, a.shape,
                                        elements=st.sampled_from([-1.0, 1.0])),
                             label=f"imaginary signs of operand {i}")
            args[i] = a + 1j * im * sign
    return dataclasses.replace(sample, args=tuple(args))


@pytest.mark.parametrize("name", COMPLEX)
@settings(max_examples=6)
@given(data=st.data())
def test_complex_jvp_matches_finite_differences(name, data):
    sample = _complex_sample(name, data)
    if "fwd" not in sample.modes:
        return  # no derivative by design (pure_callback)
    f, xs = _complex_function(name, sample)
    check_jvp(f, xs, name=name)


@pytest.mark.parametrize("name", COMPLEX)
@settings(max_examples=6)
@given(data=st.data())
def test_complex_vjp_matches_jvp(name, data):
    sample = _complex_sample(name, data)
    if "rev" not in sample.modes:
        return  # forward-only by design (while)
    f, xs = _complex_function(name, sample)
    check_vjp(f, xs, name=name)


@pytest.mark.parametrize("name", COMPLEX)
@settings(max_examples=3)
@given(data=st.data())
def test_complex_second_order(name, data):
    sample = _complex_sample(name, data)
    if not sample.modes:
        return
    f, xs = _complex_function(name, sample)
    check_grads(f, xs, order=2, modes=sample.modes)


@pytest.mark.parametrize("name", COMPLEX)
@settings(max_examples=4)
@given(data=st.data())
def test_complex_vmap_matches_loop(name, data):
    prim = REGISTRY[name]
    sample = _complex_sample(name, data)
    if not sample.modes:
        return  # no derivative by design (pure_callback: its sample declares real results)
    args = [fa.asarray(a, copy=False) for a in sample.args]
    batchable = range(len(args)) if sample.batchable is None else sample.batchable
    _check_vmap(lambda *xs: _bind(prim, xs, sample.params), args, batchable, data)


@pytest.mark.parametrize("name", sorted(REAL_KERNELS))
@settings(max_examples=2)
@given(data=st.data())
def test_real_only_kernels_refuse_complex(name, data):
    f, xs = _function_of_diff(REGISTRY[name], _complex_sample(name, data))
    with pytest.raises(TypeError):
        f(*xs)


# Primitives without derivatives still meet complex operands (comparisons, rounding, sorting):
# each either computes the same thing eagerly, under jit and under vmap, or refuses with a
# TypeError.  Samples with no floating operand have nothing to make complex.
NON_DIFFERENTIABLE = [n for n in NAMES if not REGISTRY[n].differentiable]


def _with_imaginary_part(a: np.ndarray) -> np.ndarray:
    """``a`` plus an imaginary part taken from its own values reversed (distinct per element,
    so ties and orderings stay as varied as in the real sample)."""
    if a.dtype.kind != "f":
        return a
    with np.errstate(invalid="ignore"):  # inf samples: inf * 0.5j has a NaN real part
        return a + 0.5j * np.flip(a)


@pytest.mark.parametrize("name", NON_DIFFERENTIABLE)
@settings(max_examples=4)
@given(data=st.data())
def test_non_differentiable_primitives_on_complex_inputs(name, data):
    prim = REGISTRY[name]
    sample = _sample(name, data)
    hosts = [_with_imaginary_part(np.asarray(a)) for a in sample.args]
    if not any(h.dtype.kind == "c" for h in hosts):
        return
    args = [fa.asarray(h) for h in hosts]
    try:
        eager = _bind(prim, args, sample.params)
    except TypeError:
        return  # refused, as a kernel without a complex meaning must
    jitted = fa.jit(lambda *xs: _bind(prim, xs, sample.params))(*args)
    for e, j in zip(eager, jitted):
        assert np.asarray(j).dtype == np.asarray(e).dtype, f"{name}: jit changes the dtype"
        np.testing.assert_array_equal(np.asarray(j), np.asarray(e), err_msg=f"{name}: jit vs eager")
    batchable = range(len(args)) if sample.batchable is None else sample.batchable
    _check_vmap(lambda *xs: _bind(prim, xs, sample.params), args, batchable, data)
