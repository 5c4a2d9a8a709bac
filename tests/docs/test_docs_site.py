"""The documentation site: it builds with warnings as errors, every nav page is rendered,
and the FA gate equations reach the pages as MathJax-ready math.

The site is built once per session into a temporary folder, exactly as ``.ci/docs`` does
(``mkdocs build --strict``); griffe reads the source statically, so nothing heavy is imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import yaml

for _package in ("mkdocs", "mkdocstrings_handlers.python", "material", "pymdownx"):
    pytest.importorskip(
        _package, reason="the docs extra is not installed: pip install -e '.[docs]'"
    )

ROOT = Path(__file__).resolve().parents[2]


def _nav_pages(nav: list) -> list[str]:
    """Every Markdown path in a mkdocs ``nav`` tree, in order."""
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _rendered(site: Path, page: str) -> Path:
    """Where mkdocs (use_directory_urls) writes ``page``: a/b.md → a/b/index.html,
    a/index.md → a/index.html."""
    path = Path(page).with_suffix("")
    return site / (path.parent if path.name == "index" else path) / "index.html"


def _math_blocks(html: str) -> list[str]:
    """The TeX of every arithmatex display block (``<div class="arithmatex">\\[ … \\]</div>``)."""
    blocks = re.findall(r'<div class="arithmatex">(.*?)</div>', html, flags=re.S)
    return [unescape(b) for b in blocks]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with the heavy dependencies made unimportable: the API pages are
    read statically, so the docs build needs neither PyTorch nor a working data stack."""
    out = tmp_path_factory.mktemp("site")
    blockers = tmp_path_factory.mktemp("blocked_imports")
    for name in ("torch", "lightning", "xarray", "keras"):
        (blockers / f"{name}.py").write_text(f"raise ImportError('the docs build imported {name}')")
    path = os.pathsep.join(p for p in (str(blockers), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": path},
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    return out


def test_every_nav_page_exists_and_is_rendered(site: Path) -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = _nav_pages(config["nav"])
    assert len(pages) >= 20  # home, guides, tutorials, design notes and the API pages
    missing = [p for p in pages if not (ROOT / "docs" / p).is_file()]
    assert not missing, f"nav names pages that are not in docs/: {missing}"
    unrendered = [p for p in pages if not _rendered(site, p).is_file()]
    assert not unrendered, f"nav pages without a rendered page: {unrendered}"


def test_design_page_has_the_fa_gate_equations_as_mathjax(site: Path) -> None:
    blocks = _math_blocks(_rendered(site, "design.md").read_text())
    # the FA step (the page also shows ConvLSTM's): the one block with the depthwise mixing
    fa = [b for b in blocks if r"\mathrm{DWConv}" in b]
    assert len(fa) == 1, f"expected one FA step block among {len(blocks)} math blocks"
    tex = fa[0]
    assert tex.lstrip().startswith(r"\[") and tex.rstrip().endswith(r"\]")
    for symbol in (r"\sigma", "c_t", "c_{t-1}", r"\odot", r"\tanh", "h_t", "p_i", "p_f", "p_o"):
        assert symbol in tex, f"{symbol} missing from the design page's gate equations"


def test_fa_api_page_renders_the_docstring_math_as_mathjax(site: Path) -> None:
    html = _rendered(site, "api/layers.md").read_text()
    start = html.index('id="faconvlstm.layers.faconvlstm.FAConvLSTM2D"')
    end = html.index('id="faconvlstm.layers.convlstm"')
    blocks = _math_blocks(html[start:end])
    assert any(r"\mathrm{DWConv}" in b and "c_t" in b and r"\sigma" in b for b in blocks)
    assert '<span class="arithmatex">\\(W_x\\)</span>' in html[start:end]  # inline :math:


def test_no_restructuredtext_markup_is_left_in_the_api_pages(site: Path) -> None:
    for page in sorted((site / "api").glob("*/index.html")):
        text = page.read_text()
        markups = (".. math::", ":math:`", ":class:`", ":func:`", ":mod:`", ":meth:`", "=====  ")
        for markup in markups:  # the last: a simple-table border
            assert markup not in text, f"{markup!r} left unconverted in {page}"


def _rst_markup():
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    path = ROOT / "docs" / "_ext" / "rst_markup.py"
    spec = importlib.util.spec_from_file_location("rst_markup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rst_math_directive_becomes_an_aligned_display_block() -> None:
    text = "Step:\n\n.. math::\n    c_t &= f c_{t-1} \\\\\n    h_t &= o c_t\n\nAfter."
    out = _rst_markup().rst_to_markdown(text, "faconvlstm.layers.x")
    assert out.splitlines() == [
        "Step:",
        "",
        "$$",
        "\\begin{aligned}",
        "c_t &= f c_{t-1} \\\\",
        "h_t &= o c_t",
        "\\end{aligned}",
        "$$",
        "",
        "After.",
    ]


def test_rst_roles_become_inline_math_and_optional_autorefs() -> None:
    out = _rst_markup().rst_to_markdown(
        "See :class:`~faconvlstm.layers.ConvLSTM2D`, :func:`open_gridded` and :math:`\\gamma`.",
        "faconvlstm.data",
    )
    assert out == (
        'See <autoref identifier="faconvlstm.layers.ConvLSTM2D" optional>'
        "<code>ConvLSTM2D</code></autoref>, "
        '<autoref identifier="faconvlstm.data.open_gridded" optional>'
        "<code>open_gridded</code></autoref> and \\(\\gamma\\)."
    )


def test_rst_literal_marker_becomes_a_colon() -> None:
    out = _rst_markup().rst_to_markdown("Example::\n\n    >>> 1\n", "faconvlstm")
    assert out.splitlines()[0] == "Example:"


def test_rst_simple_table_becomes_a_pipe_table() -> None:
    text = (
        "Samples:\n\n"
        "=====  =============\n"
        "name   contents\n"
        "=====  =============\n"
        "sst    SST anomalies,\n"
        "       1963-2012\n"
        "z500   heights | m\n"
        "=====  =============\n\n"
        "After."
    )
    out = _rst_markup().rst_to_markdown(text, "faconvlstm.data")
    assert out.splitlines() == [
        "Samples:",
        "",
        "",
        "| name | contents |",
        "|---|---|",
        "| sst | SST anomalies, 1963-2012 |",
        "| z500 | heights \\| m |",
        "",
        "",
        "After.",
    ]
