"""Griffe extension: render the reST markup of faconvlstm's docstrings as Markdown.

The docstrings are Google style with a few reStructuredText constructs, because that is what
``help()``, IDEs and Sphinx users read: ``.. math::`` blocks, ``:math:`` roles, cross-reference
roles (``:class:``, ``:func:``, ...) and ``text::`` literal-block markers. mkdocstrings renders
docstrings as Markdown, so this extension rewrites those constructs before parsing:

* ``.. math::`` + its indented block → a ``$$ \\begin{aligned} … \\end{aligned} $$`` block that
  ``pymdownx.arithmatex`` turns into MathJax-ready ``<div class="arithmatex">``;
* ``:math:`x``` → ``\\(x\\)`` (inline arithmatex);
* ``:class:`~a.b.C``` (any Python-domain role) → an *optional* autorefs link: a link when the
  target is rendered somewhere in the site, plain code otherwise (never a strict-mode warning);
* a simple table (``=====  =====`` borders) → a Markdown pipe table; as in reST, a line
  whose first column is blank continues the row above;
* a trailing ``::`` → ``:`` (the indented block after it is a Markdown code block already).

Enabled from ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")
_MATH_ROLE = re.compile(r":math:`(?P<body>[^`]+)`")
_XREF_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc):`(?P<target>[^`]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::$")
_TABLE_BORDER = re.compile(r"^(?P<indent>[ \t]*)=+(?: +=+)+[ \t]*$")


def _math_blocks(lines: list[str]) -> list[str]:
    """Replace each ``.. math::`` directive and its indented body by a ``$$`` block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        body = [match["first"]] if match["first"].strip() else []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        tex = [line for line in body if line]
        # aligned keeps the docstrings' "&" / "\\" layout; MathJax needs it for either
        out += [f"{indent}$$", f"{indent}\\begin{{aligned}}"]
        out += [f"{indent}{line}" for line in tex]
        out += [f"{indent}\\end{{aligned}}", f"{indent}$$", ""]
    return out


def _table_rows(lines: list[str], starts: list[int]) -> list[list[str]]:
    """Cells of the lines between two borders, continuation lines merged into their row."""
    rows: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
        if rows and not cells[0]:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells)]
        else:
            rows.append(cells)
    return rows


def _pipe_row(indent: str, cells: list[str]) -> str:
    return f"{indent}| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _simple_tables(lines: list[str]) -> list[str]:
    """Replace each reST simple table (top border, header, border, rows, bottom border)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _TABLE_BORDER.match(lines[i])
        border = lines[i].strip()
        ends = [j for j in range(i + 1, len(lines)) if match and lines[j].strip() == border]
        if len(ends) < 2:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"] if match else ""
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]
        header = _table_rows(lines[i + 1 : ends[0]], starts)
        body = _table_rows(lines[ends[0] + 1 : ends[1]], starts)
        out += ["", _pipe_row(indent, header[0]), f"{indent}|" + "---|" * len(starts)]
        out += [_pipe_row(indent, row) for row in body]
        out.append("")
        i = ends[1] + 1
    return out


def _xref(module: str, match: re.Match[str]) -> str:
    target = match["target"].strip()
    title, _, explicit = target.partition("<")
    if explicit:  # :class:`title <a.b.C>`
        identifier, label = explicit.rstrip(">").strip(), title.strip()
    else:
        identifier = target.lstrip("~")
        label = identifier.rsplit(".", 1)[-1] if target.startswith("~") else identifier
    if not identifier.startswith("faconvlstm") and "." not in identifier:
        identifier = f"{module}.{identifier}"  # a name relative to the docstring's module
    return f'<autoref identifier="{identifier}" optional><code>{label}</code></autoref>'


def rst_to_markdown(text: str, module: str) -> str:
    """The Markdown rendering of a docstring's reST constructs (see the module docstring)."""
    lines = _simple_tables(_math_blocks(text.splitlines()))
    text = "\n".join(_LITERAL_MARKER.sub(":", line.rstrip()) for line in lines)
    text = _MATH_ROLE.sub(lambda m: f"\\({m['body']}\\)", text)
    return _XREF_ROLE.sub(lambda m: _xref(module, m), text)


class RstMarkup(griffe.Extension):
    """Rewrites every docstring once the object tree is complete (see the module docstring)."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value, obj.module.path)
