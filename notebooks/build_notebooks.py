"""Build the notebooks in this folder from their plain-Python sources and execute them.

Run (from the repository root): ``python notebooks/build_notebooks.py [NAME ...]``.

Each ``notebooks/src/NN_name.py`` is a Python file in the "percent" cell format (the one
jupytext and VS Code read): a line ``# %%`` starts a code cell, ``# %% [markdown]`` a
Markdown cell whose lines are comments.  The script turns every source (or only the named
ones) into ``notebooks/NN_name.ipynb``, executes it top to bottom in a fresh kernel with
the notebook folder as working directory, and writes it with its outputs and inline PNG
plots, so a reader sees the results without running anything; each notebook's last plot is
also written to ``docs/notebooks/NN_name.png`` for the README.  Review the sources; the
``.ipynb`` files are what users open.  ``tests/test_notebooks.py`` checks that the two agree
and runs every notebook again.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
FIGURES = HERE.parent / "docs" / "notebooks"  # each notebook's last plot, shown in the README
MARKER = "# %%"


def parse_cells(text: str) -> list[tuple[str, str]]:
    """``[(kind, source)]`` with kind ``"markdown"`` or ``"code"``, from percent-format text."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith(MARKER):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append((kind, []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"code before the first '{MARKER}' line: {line!r}")
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        source = "\n".join(lines).strip("\n")
        if source:
            out.append((kind, source))
    return out


def notebook_from_source(path: Path):
    """An unexecuted ``nbformat`` notebook made from one source file."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in parse_cells(path.read_text())]
    return nb


def execute(nb, timeout: int = 600):
    """Run ``nb`` in a fresh ``python3`` kernel (cwd: this folder); raises on any error.

    The kernel gets one BLAS thread: on a small machine shared with other work, threaded
    matrix products wait on each other (measured: a 1000x784 @ 784x32 product 20x slower
    at load 5 on 2 cores), which would make both the run time and the timings in the
    notebooks depend on the neighbours."""
    import nbclient
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}}).execute(env=env)
    return nb


def build(source: Path) -> Path:
    """Build, execute and write the notebook of one source; returns the .ipynb path."""
    import nbformat
    target = HERE / f"{source.stem}.ipynb"
    t0 = time.perf_counter()
    nb = execute(notebook_from_source(source))
    for i, cell in enumerate(nb.cells):  # ids are random per build: use the position instead
        cell.id = f"{source.stem[:2]}-{i:02d}"
    nbformat.write(nb, target)
    save_last_plot(nb, FIGURES / f"{source.stem}.png")
    print(f"{target.name}: {len(nb.cells)} cells, executed in {time.perf_counter() - t0:.1f} s")
    return target


def save_last_plot(nb, path: Path) -> None:
    """Write the last inline PNG of an executed notebook to ``path``."""
    pngs = [o["data"]["image/png"] for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if "image/png" in o.get("data", {})]
    if pngs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(pngs[-1]))


def main(names: list[str]) -> None:
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if names:
        sources = [s for s in sources if s.stem in names or s.stem[:2] in names]
    for source in sources:
        build(source)


if __name__ == "__main__":
    main(sys.argv[1:])
