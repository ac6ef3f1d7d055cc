"""One small table type behind every display: text, HTML and a pandas DataFrame.

``Table`` holds a title, column names and rows of plain values.  Rows may carry a *mark*
(``"nat"``: a row that rewrote addresses, ``"drop"``: a packet dropped) and single cells may
be marked ``"changed"`` (an address that differs from the packet's previous hop); the HTML
form colours them with inline styles (so they survive nbconvert and GitHub's renderer), the
text form prefixes marked rows with ``*`` (NAT) or ``!`` (drop).  pandas is imported only by
``to_dataframe()``: it lives in the ``notebook`` extra.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas

ROW_STYLES = {  # explicit text colours: readable on dark themes too
    "nat": "background:#fff3c4;color:#000",
    "drop": "background:#fde2e2;color:#b00020;font-weight:bold",
    "deliver": "background:#e6f4ea;color:#000",
}
CELL_STYLES = {"changed": "background:#ffd54f;color:#000;font-weight:bold"}
TABLE_STYLE = "border-collapse:collapse;font-family:monospace;font-size:12px"
TEXT_MARKS = {"nat": "*", "drop": "!"}


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def require_pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_dataframe() needs pandas: pip install 'pktsim[notebook]'") \
            from exc
    return pandas


@dataclass
class Table:
    """A titled table; ``marks[i]`` styles row ``i``, ``cells[(i, column)]`` one cell."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    marks: dict[int, str] = field(default_factory=dict)
    cells: dict[tuple[int, str], str] = field(default_factory=dict)
    note: str = ""

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def column(self, name: str) -> list[Any]:
        """Every value of one column."""
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def grep(self, text: str) -> Table:
        """The rows with ``text`` in any cell (marks kept)."""
        keep = [i for i, row in enumerate(self.rows) if any(text in str(c) for c in row)]
        return self._subset(keep, f"{self.title} | grep {text}")

    def head(self, n: int = 10) -> Table:
        return self._subset(list(range(min(n, len(self.rows)))), self.title)

    def _subset(self, keep: Sequence[int], title: str) -> Table:
        index = {old: new for new, old in enumerate(keep)}
        return Table(title, self.columns, [self.rows[i] for i in keep],
                     {index[i]: m for i, m in self.marks.items() if i in index},
                     {(index[i], c): m for (i, c), m in self.cells.items() if i in index},
                     self.note)

    def to_dataframe(self) -> pandas.DataFrame:
        """The rows as a DataFrame with ``columns`` as its columns."""
        pd = require_pandas()
        return pd.DataFrame(self.rows, columns=list(self.columns))

    # -- text -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def text(self, max_rows: int | None = None) -> str:
        """Aligned columns (the last one unpadded), ``*``/``!`` before NAT/drop rows."""
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        cells = [[str(c) if c is not None else "" for c in row] for row in shown]
        head = list(self.columns)
        widths = [max([len(head[i])] + [len(r[i]) for r in cells]) for i in range(len(head))]

        def line(mark: str, values: list[str]) -> str:
            padded = [v.ljust(w) for v, w in zip(values[:-1], widths[:-1], strict=True)]
            return (mark + " " + "  ".join([*padded, values[-1]])).rstrip()

        out = [f"{self.title} ({len(self.rows)} rows)" if self.title else ""]
        out.append(line(" ", head))
        for i, values in enumerate(cells):
            out.append(line(TEXT_MARKS.get(self.marks.get(i, ""), " "), values))
        if max_rows is not None and len(self.rows) > max_rows:
            out.append(f"  … {len(self.rows) - max_rows} more rows")
        if self.note:
            out.append(self.note)
        return "\n".join(x for x in out if x) + "\n"

    # -- HTML -----------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        return self.html()

    def html(self, max_rows: int | None = None) -> str:
        """An HTML ``<table>`` with the title as caption; marked rows and cells coloured."""
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = []
        for i, row in enumerate(shown):
            tds = []
            for col, value in zip(self.columns, row, strict=True):
                cell = self.cells.get((i, col))
                style = f' style="{CELL_STYLES[cell]}"' if cell in CELL_STYLES else ""
                tds.append(f"<td{style}>{esc(value)}</td>")
            mark = self.marks.get(i)
            attrs = f' class="pktsim-{mark}" style="{ROW_STYLES[mark]}"' \
                if mark in ROW_STYLES else ""
            body.append(f'<tr{attrs}>{"".join(tds)}</tr>')
        more = ""
        if max_rows is not None and len(self.rows) > max_rows:
            more = f"<p><i>… {len(self.rows) - max_rows} more rows</i></p>"
        caption = (f'<caption style="caption-side:top;text-align:left;font-weight:bold">'
                   f"{esc(self.title)} ({len(self.rows)} rows)</caption>") if self.title else ""
        note = f"<p><i>{esc(self.note)}</i></p>" if self.note else ""
        return (f'<table class="pktsim-table" style="{TABLE_STYLE}">{caption}<thead><tr>{head}'
                f"</tr></thead><tbody>{''.join(body)}</tbody></table>{more}{note}")
