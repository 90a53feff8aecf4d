"""The report's page in two formats from one list of blocks: Markdown (`index.md`, figures
beside it) and a self-contained HTML page (`index.html`: figures embedded, tables sortable by
a click on a column, no network needed)."""

import base64
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|<>$~&])")


def md_text(text: object) -> str:
    """`text` (a run, class or split name) as literal Markdown text on one line: every
    character Markdown or HTML would act on is escaped."""
    return _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str
    code_spans: bool = False  # `x` marks code; otherwise the text is taken literally


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Items:
    items: list[str]


@dataclass
class Image:
    alt: str
    path: Path


@dataclass
class Figure:
    heading: str
    path: Path
    caption: str  # `x` marks code


Block = Heading | Paragraph | Table | Items | Image | Figure


def _link(path: Path, out: Path) -> str:
    target = Path(os.path.relpath(Path(path).resolve(), out.resolve())).as_posix()
    return f"<{target}>" if re.search(r"[\s()<>]", target) else target


def to_markdown(blocks: list[Block], out: Path) -> str:
    """The page as Markdown; figures are linked relative to the folder `out`."""
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += [f"{'#' * b.level} {md_text(b.text)}", ""]
        elif isinstance(b, Paragraph):
            lines += [b.text if b.code_spans else md_text(b.text), ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(md_text(c) for c in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Items):
            lines += [f"- {md_text(item)}" for item in b.items] + [""]
        elif isinstance(b, Image):
            lines += [f"![{md_text(b.alt)}]({_link(b.path, out)})", ""]
        else:
            lines += [
                f"### {md_text(b.heading)}",
                "",
                f"![{md_text(b.heading)}]({_link(b.path, out)})",
            ]
            lines += ["", f"*{b.caption}*", ""]
    return "\n".join(lines)


def _inline(text: str, code_spans: bool) -> str:
    escaped = html.escape(text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped) if code_spans else escaped


def _embedded(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " \\25B2"; }
th[data-order="desc"]::after { content: " \\25BC"; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-style: italic; color: #555; margin-bottom: 2em; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""

# A click on a header sorts the rows by that column: as numbers where every cell reads as one
# (a leading number, so "test 0.51" sorts by 0.51 only if all cells of the column start so),
# otherwise as text; a second click reverses.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => {
  th.addEventListener("click", () => {
    const table = th.closest("table"), body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const order = th.dataset.order === "asc" ? "desc" : "asc";
    table.querySelectorAll("th").forEach(h => delete h.dataset.order);
    th.dataset.order = order;
    const key = r => r.cells[column].textContent.trim();
    const numeric = rows.every(r => !isNaN(parseFloat(key(r))) || key(r) === "n/a");
    const value = r => numeric ? (key(r) === "n/a" ? -Infinity : parseFloat(key(r))) : key(r);
    rows.sort((a, b) => {
      const x = value(a), y = value(b);
      const c = numeric ? x - y : String(x).localeCompare(String(y));
      return order === "asc" ? c : -c;
    });
    rows.forEach(r => body.appendChild(r));
  });
});
"""


def to_html(blocks: list[Block], title: str) -> str:
    """The page as one HTML file holding its figures (PNG data URIs) and its sorting script."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            parts.append(f"<p>{_inline(b.text, b.code_spans)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(c)}</th>" for c in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            table = f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            parts.append(f'<table class="sortable">{table}</table>')
        elif isinstance(b, Items):
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Image):
            parts.append(f"<figure>{_embedded(b.path, b.alt)}</figure>")
        else:
            parts.append(
                f"<h3>{html.escape(b.heading)}</h3><figure>{_embedded(b.path, b.heading)}"
                f"<figcaption>{_inline(b.caption, True)}</figcaption></figure>"
            )
    parts += [f"<script>{_SORT_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts)
