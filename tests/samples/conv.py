"""Samples for the convolution primitives: 1-d and 2-d (``conv_transpose`` also 3-d), with
groups, strides, dilation and asymmetric padding, including size-0 batches and size-1 axes
(``conv``/``conv_columns`` with and without their optional bias; ``conv_weight_cotangent``
of ``conv``'s geometries)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.samples import Sample, floats


@st.composite
def _geometry(draw, max_nd=2, unit_strides=False):
    """A consistent (input, weight, params) configuration for ``conv``; ``unit_strides``:
    half the draws have stride 1 on every axis."""
    nd = draw(st.integers(1, max_nd))
    side = 3 if nd < 3 else 2  # 3-d samples stay small
    n = draw(st.integers(0, 2))
    groups = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, side)) for _ in range(nd))
    if unit_strides and draw(st.booleans()):
        strides = (1,) * nd
    else:
        strides = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    out = tuple(draw(st.integers(1, side)) for _ in range(nd))
    spatial = tuple(max(1, (o - 1) * s + d * (k - 1) + 1 - lo - hi)
                    for o, s, d, k, (lo, hi) in zip(out, strides, dilation, kernel, padding))
    return dict(x=(n, groups * cg, *spatial), w=(groups * og, cg, *kernel),
                params=dict(strides=strides, padding=padding, dilation=dilation),
                groups=groups)


def _out(spatial, kernel, p):
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, k, s, (lo, hi), d in
                 zip(spatial, kernel, p["strides"], p["padding"], p["dilation"]))


def _bias(out_channels):
    """The optional bias operand of ``conv``/``conv_columns``: absent in half the draws."""
    return st.one_of(st.just(()), floats((out_channels,)).map(lambda b: (b,)))


def _conv():
    return _geometry().flatmap(lambda g: st.tuples(
        floats(g["x"]), floats(g["w"]), _bias(g["w"][0])).map(
        lambda a: Sample(args=(*a[:2], *a[2]), params=dict(g["params"], groups=g["groups"]),
                         diff=tuple(range(2 + len(a[2]))))))


def _patches():
    return _geometry().flatmap(lambda g: floats(g["x"]).map(
        lambda x: Sample(args=(x,), params=dict(g["params"], kernel=g["w"][2:]))))


def _patches_transpose():
    def build(g):
        kernel, spatial = g["w"][2:], g["x"][2:]
        cols = (g["x"][1], *kernel, g["x"][0], *_out(spatial, kernel, g["params"]))
        return floats(cols).map(lambda c: Sample(
            args=(c,), params=dict(g["params"], kernel=kernel, in_spatial=spatial)))
    return _geometry().flatmap(build)


def _columns():
    def build(g):
        kernel, spatial = g["w"][2:], g["x"][2:]
        cols = (g["x"][1], *kernel, g["x"][0], *_out(spatial, kernel, g["params"]))
        return st.tuples(floats(cols), floats(g["w"]), _bias(g["w"][0])).map(
            lambda a: Sample(args=(*a[:2], *a[2]), params=dict(groups=g["groups"]),
                             diff=tuple(range(2 + len(a[2])))))
    return _geometry().flatmap(build)


def _transpose():
    """``conv_transpose(ct, w)``: ``ct`` covers the window positions of ``conv`` on the
    sample's input, whose size sometimes grows by one at the high end (a transposed
    convolution's ``output_padding``: then ``conv`` has more positions than ``ct``)."""
    def build(g):
        kernel, spatial = g["w"][2:], g["x"][2:]
        ct = (g["x"][0], g["w"][0], *_out(spatial, kernel, g["params"]))
        grow = st.tuples(*(st.integers(0, 1) for _ in spatial))
        return st.tuples(floats(ct), floats(g["w"]), grow).map(lambda a: Sample(
            args=a[:2], params=dict(g["params"], groups=g["groups"], in_spatial=tuple(
                s + e for s, e in zip(spatial, a[2]))), diff=(0, 1)))
    return _geometry(max_nd=3, unit_strides=True).flatmap(build)


def _weight_cotangent():
    """``conv_weight_cotangent(x, ct)``: ``ct`` covers the window positions of ``conv`` on
    ``x``; half the draws have stride 1 (Winograd's geometry when its kernels run)."""
    def build(g):
        kernel = g["w"][2:]
        ct = (g["x"][0], g["w"][0], *_out(g["x"][2:], kernel, g["params"]))
        return st.tuples(floats(g["x"]), floats(ct)).map(lambda a: Sample(
            args=a, params=dict(g["params"], groups=g["groups"], kernel=kernel),
            diff=(0, 1)))
    return _geometry(unit_strides=True).flatmap(build)


def _channel_major():
    """An output cotangent ``(N, O, *out)``, with and without the sums over samples."""
    def build(g):
        ct = (g["x"][0], g["w"][0], *_out(g["x"][2:], g["w"][2:], g["params"]))
        return st.tuples(floats(ct), st.booleans()).map(lambda a: Sample(
            args=(a[0],), params=dict(groups=g["groups"], sums=a[1])))
    return _geometry().flatmap(build)


SAMPLES = {
    "conv": _conv,
    "conv_channel_major": _channel_major,
    "conv_columns": _columns,
    "conv_patches": _patches,
    "conv_patches_transpose": _patches_transpose,
    "conv_transpose": _transpose,
    "conv_weight_cotangent": _weight_cotangent,
}
