"""The notebooks in notebooks/: built from their sources, executed in CI, outputs committed.

Each ``notebooks/NN_name.ipynb`` must hold exactly the cells of ``notebooks/src/NN_name.py``
(so the reviewed source is what readers see), carry its outputs and at least one inline PNG
plot, open with the question it answers and end with what the numbers showed, and run top
to bottom in a fresh kernel without an error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted((FOLDER / "src").glob("[0-9][0-9]_*.py"))
EXPECTED = ["01_jvp_basics", "02_forward_vs_reverse_cost", "03_hessian_vector_products",
            "04_jvp_through_modules", "05_per_example_gradients"]


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", FOLDER / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_five_notebooks_and_nothing_else():
    assert [s.stem for s in SOURCES] == EXPECTED
    assert sorted(p.stem for p in FOLDER.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source_and_carries_outputs(source):
    built = _builder().notebook_from_source(source)
    committed = nbformat.read(FOLDER / f"{source.stem}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == \
        [(c.cell_type, c.source) for c in built.cells], \
        f"{source.stem}.ipynb is stale: run python notebooks/build_notebooks.py {source.stem[:2]}"
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell was executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    first, last = committed.cells[0], committed.cells[-1]
    assert first.cell_type == "markdown" and "**Question.**" in first.source
    assert last.cell_type == "markdown" and last.source.startswith("## What the numbers showed")


def test_percent_format_parsing():
    cells = _builder().parse_cells("# %% [markdown]\n# # Title\n# text\n#\n# more\n\n# %%\nx = 1\n\n"
                                   "# a comment stays code\n# %%\n\n")
    assert cells == [("markdown", "# Title\ntext\n\nmore"), ("code", "x = 1\n\n# a comment stays code")]


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(source):
    builder = _builder()
    nb = builder.execute(builder.notebook_from_source(source))
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
