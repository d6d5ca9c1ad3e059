"""Render a :class:`~claudesec.audit.report.model.Report` as one self-contained HTML page.

The page fetches nothing: a Content-Security-Policy meta tag (``default-src 'none'``) forbids
every script, frame, font and remote resource, and allows only the inline style and ``data:``
images. Charts are inline SVG from :mod:`claudesec.audit.report.svg`. Every string that came
from the store (users, models, reasons) is escaped with :func:`html.escape` at the point it
enters the markup; nothing is marked "safe". ``@media print`` starts each section on a new
page and keeps a figure on one page, so "print to PDF" gives an auditor a clean document.
"""

from __future__ import annotations

from html import escape

from claudesec.audit.report.model import Cell, Figure, Report, Section
from claudesec.audit.report.svg import bar_chart, line_chart

_OPEN_ROWS = 12

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2733;margin:0 auto;
max-width:960px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:20px;border-bottom:2px solid #3b6ea8;
padding-bottom:4px;margin-top:36px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#566}.ok{color:#17692b;font-weight:600}.bad{color:#a4161a;font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}
dl.facts dt{color:#566}dl.facts dd{margin:0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #dde;padding:3px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code.q{display:block;background:#f3f5f8;border:1px solid #dde;padding:4px 8px;font-size:12px;
white-space:pre-wrap;word-break:break-all}
figure{margin:12px 0 22px}svg.chart{max-width:100%;height:auto;display:block}
nav a{margin-right:12px}.note{color:#566;font-style:italic}
@media print{nav{display:none}body{max-width:none;padding:0}
section{break-before:page}section:first-of-type{break-before:auto}
figure{break-inside:avoid}h2,h3{break-after:avoid}code.q{font-size:10px}}
"""


def render_html(report: Report) -> str:
    """The whole page as a string."""
    verdict = (
        '<span class="ok">integrity verified</span>'
        if report.integrity_ok
        else '<span class="bad">INTEGRITY CHECK FAILED</span>'
    )
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in report.sections)
    body = "".join(_section(s) for s in report.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>claudesec audit report {escape(report.since)} to {escape(report.until)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<header><h1>claudesec audit report</h1>"
        f'<p class="meta">Period {escape(report.since)} to {escape(report.until)} (UTC, end '
        f"exclusive) &middot; store <code>{escape(report.store)}</code> &middot; generated "
        f"{escape(report.generated)} &middot; {verdict}</p>"
        f"<nav>{nav}</nav></header>"
        f"<main>{body}</main></body></html>\n"
    )


def _section(section: Section) -> str:
    facts = "".join(
        f"<dt>{escape(name)}</dt><dd>{escape(_cell(value))}</dd>" for name, value in section.facts
    )
    note = f'<p class="note">{escape(section.note)}</p>' if section.note else ""
    figures = "".join(_figure(f) for f in section.figures)
    return (
        f'<section id="{escape(section.id)}"><h2>{escape(section.title)}</h2>{note}'
        f"{f'<dl class=facts>{facts}</dl>' if facts else ''}{figures}</section>"
    )


def _figure(figure: Figure) -> str:
    chart = ""
    if figure.chart and figure.rows:
        points = [
            (str(row[0]), float(row[figure.chart_column]))
            for row in figure.rows
            if isinstance(row[figure.chart_column], (int, float))
        ]
        chart = (line_chart if figure.chart == "line" else bar_chart)(figure.title, points)
    table = ""
    if figure.rows:
        head = "".join(f"<th>{escape(c)}</th>" for c in figure.columns)
        rows = "".join(
            "<tr>" + "".join(_td(value) for value in row) + "</tr>" for row in figure.rows
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        if chart and len(figure.rows) > _OPEN_ROWS:
            # The chart carries the picture; long tables of its numbers fold away (no script
            # needed: <details> is plain HTML). Every number is also in the JSON twin.
            table = f"<details><summary>{len(figure.rows)} rows</summary>{table}</details>"
    note = f'<p class="note">{escape(figure.note)}</p>' if figure.note else ""
    if not figure.rows and not figure.note:
        note = '<p class="note">nothing in the period</p>'
    return (
        f'<figure id="{escape(figure.id)}"><h3><a href="#{escape(figure.id)}">'
        f"{escape(figure.title)}</a></h3>{chart}{table}{note}"
        f'<figcaption>Reproduce: <code class="q">{escape(figure.query)}</code></figcaption>'
        "</figure>"
    )


def _td(value: Cell) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="n">{escape(_cell(value))}</td>'
    return f"<td>{escape(str(value))}</td>"


def _cell(value: Cell) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return value
