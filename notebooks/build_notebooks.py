"""Regenerate the notebooks in this folder from the cell lists below.

Run: ``python notebooks/build_notebooks.py``.  Keeping the source here (plain Python)
makes review and ``ruff`` possible; the ``.ipynb`` files are what users open.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

JVP_CELLS = [
    ("md", "# Jacobian-vector products with fnarray\n\n"
           "A JVP pushes a tangent vector `t` through a function: `J(x) @ t`, computed in one "
           "forward pass without ever forming `J`. This notebook checks JVPs against finite "
           "differences, builds Hessian-vector products, reuses a linearization, and compares "
           "the cost of forward and reverse mode for tall and wide Jacobians."),
    ("code", "import time\n\nimport numpy as np\n\nimport fnarray as fa\n\n"
             "rng = np.random.default_rng(0)"),
    ("md", "## 1. A JVP is a directional derivative\n"
           "`fa.jvp(f, (x,), (t,))` returns `f(x)` and `J(x) t`. Compare with a central "
           "finite difference in float64."),
    ("code", "def f(x):\n    return fa.sin(x) * fa.exp(-x ** 2) + x[::-1] ** 3\n\n"
             "x = fa.asarray(rng.normal(size=5))\nt = fa.asarray(rng.normal(size=5))\n"
             "y, jt = fa.jvp(f, (x,), (t,))\neps = 1e-6\n"
             "fd = (f(x + eps * t) - f(x - eps * t)) / (2 * eps)\n"
             "print('jvp        ', np.asarray(jt))\nprint('finite diff', np.asarray(fd))\n"
             "assert np.allclose(np.asarray(jt), np.asarray(fd), atol=1e-7)"),
    ("md", "## 2. JVP and VJP agree\n"
           "For any cotangent `c`: `<c, J t> = <J^T c, t>`."),
    ("code", "c = fa.asarray(rng.normal(size=5))\n_, pullback = fa.vjp(f, x)\n"
             "lhs = float(fa.vdot(c, jt))\nrhs = float(fa.vdot(pullback(c)[0], t))\n"
             "print(lhs, rhs)\nassert abs(lhs - rhs) < 1e-10"),
    ("md", "## 3. Hessian-vector products: forward over reverse\n"
           "`jvp(grad(f))` gives `H v` in time proportional to a gradient, never building `H`."),
    ("code", "def energy(w):\n    return fa.sum(fa.log1p(fa.exp(w @ w.T))) / w.shape[0]\n\n"
             "w = fa.asarray(rng.normal(size=(6, 3)))\nv = fa.asarray(rng.normal(size=(6, 3)))\n"
             "hvp = fa.jvp(fa.grad(energy), (w,), (v,))[1]\n"
             "H = fa.hessian(energy)(w).reshape(18, 18)\n"
             "print(np.abs(np.asarray(hvp).ravel() - np.asarray(H @ v.ravel())).max())\n"
             "assert np.allclose(np.asarray(hvp).ravel(), np.asarray(H @ v.ravel()))"),
    ("md", "## 4. Linearize once, push many tangents\n"
           "`fa.linearize` records the forward pass once; `f_jvp` then applies `J` to any "
           "tangent without re-running `f`. `vmap` pushes a whole batch of tangents at once."),
    ("code", "y, f_jvp = fa.linearize(f, x)\nT = fa.asarray(rng.normal(size=(4, 5)))\n"
             "batched = fa.vmap(f_jvp)(T)\n"
             "direct = fa.stack([fa.jvp(f, (x,), (T[i],))[1] for i in range(4)])\n"
             "print(np.abs(np.asarray(batched) - np.asarray(direct)).max())\n"
             "assert np.allclose(np.asarray(batched), np.asarray(direct))"),
    ("md", "## 5. Forward or reverse? It depends on the Jacobian's shape\n"
           "`jacfwd` costs one JVP per *input*, `jacrev` one VJP per *output*. For a wide "
           "function (many inputs, few outputs) reverse mode wins; for a tall one, forward."),
    ("code", "def wide(x):   # R^400 -> R^4\n"
             "    return fa.stack([fa.sum(fa.sin(x) * k) for k in range(1, 5)])\n\n"
             "def tall(x):   # R^4 -> R^400\n"
             "    return fa.sin(fa.outer(fa.arange(1.0, 101.0), x)).ravel()\n\n"
             "def seconds(fn, arg, n=3):\n    fn(arg)\n    t0 = time.perf_counter()\n"
             "    for _ in range(n):\n        fn(arg)\n    return (time.perf_counter() - t0) / n\n\n"
             "xw, xt = fa.asarray(rng.normal(size=400)), fa.asarray(rng.normal(size=4))\n"
             "assert np.allclose(np.asarray(fa.jacfwd(wide)(xw)), np.asarray(fa.jacrev(wide)(xw)))\n"
             "assert np.allclose(np.asarray(fa.jacfwd(tall)(xt)), np.asarray(fa.jacrev(tall)(xt)))\n"
             "for name, fn, arg in [('wide', wide, xw), ('tall', tall, xt)]:\n"
             "    fwd, rev = seconds(fa.jacfwd(fn), arg), seconds(fa.jacrev(fn), arg)\n"
             "    print(f'{name}: jacfwd {fwd * 1e3:7.2f} ms   jacrev {rev * 1e3:7.2f} ms')"),
    ("md", "## 6. JVPs through jit\n"
           "A jitted JVP traces once and then runs as straight-line kernel calls."),
    ("code", "jvp_fn = fa.jit(lambda x, t: fa.jvp(f, (x,), (t,))[1])\n"
             "assert np.allclose(np.asarray(jvp_fn(x, t)), np.asarray(jt))\n"
             "print(fa.make_ir(lambda x, t: fa.jvp(f, (x,), (t,))[1])(x, t))"),
]


def build(cells, path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    nbformat.write(nb, path)


if __name__ == "__main__":
    build(JVP_CELLS, HERE / "jvp_experiments.ipynb")
