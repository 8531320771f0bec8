"""Usage per organisation in the console: /staff/usage/ (every client organisation with its
figures, as `gate usage`) and the figures and chart on an organisation's page. The chart is
an SVG drawn here, on the server (no script, no outside service), with a title and a
description, and its numbers are also in a table beside it."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import request
from markupsafe import Markup, escape

from gate import usage
from gate.db import orgs
from gate.sections import SECTIONS
from gate.views.staff.common import bp, page
from gate.web.runtime import current_gate

PERIODS = (7, 30, 90, 365)
# one colour per section, told apart also by the dash pattern (not by colour alone)
STYLES = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"]
DASHES = ["", "6 3", "2 3", "8 3 2 3", "4 4", "1 2"]
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 44, 150, 12, 28


def _days() -> int:
    value = request.args.get("days", "30")
    return int(value) if value.isascii() and value.isdigit() and int(value) in PERIODS else 30


def section_title(key: str) -> str:
    return SECTIONS.get(key, "Общие страницы" if key == usage.PUBLIC else key)


@bp.route("/usage/")
def usage_list():
    gate = current_gate()
    days = _days()
    with gate.engine.connect() as conn:
        rows = usage.report(conn, gate.cfg.timezone, days=days)
        ids = dict(conn.execute(sa.select(orgs.c.name, orgs.c.id)).all())
    sections = sorted({s for r in rows for s in (*r["views"], *r["locked_hits"])})
    return page("Использование", "staff_usage.html", rows=rows, days=days, periods=PERIODS,
                sections=sections, title_of=section_title, ids=ids)


def for_org(conn, org_id: int, days: int = 30) -> dict:
    """What an organisation's page shows of its usage: the figures and the chart's data."""
    tz = current_gate().cfg.timezone
    found = usage.report(conn, tz, org_id=org_id, days=days)
    span, series = usage.daily_views(conn, tz, org_id, days)
    return {"figures": found[0] if found else None, "span": span, "series": series,
            "chart": chart(span, series), "title_of": section_title}


def chart(span: list[dt.date], series: dict) -> Markup:
    """Views per section and day as an inline SVG line chart (accessible: title, desc)."""
    top = max([1, *(n for values in series.values() for n in values)])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(span) - 1)

    def x(i):
        return LEFT + i * step

    def y(n):
        return TOP + plot_h - n / top * plot_h

    total = {key: sum(values) for key, values in series.items()}
    first, last = span[0].strftime("%d.%m.%Y"), span[-1].strftime("%d.%m.%Y")
    desc = (f"Просмотры страниц по разделам по дням с {first} по {last}. "
            + ("; ".join(f"{section_title(k)}: всего {n}" for k, n in total.items())
               if series else "Просмотров не было.") + ". Числа — в таблице ниже.")
    parts = [f'<svg class="kb-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="100%" role="img" aria-labelledby="usage-chart-title usage-chart-desc">',
             '<title id="usage-chart-title">Просмотры по разделам</title>',
             f'<desc id="usage-chart-desc">{escape(desc)}</desc>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
             'stroke="currentColor" stroke-width="1"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="currentColor" '
             'stroke-width="1"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" '
             f'fill="currentColor">{top}</text>',
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11" '
             'fill="currentColor">0</text>',
             f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11" fill="currentColor">{first}</text>',
             f'<text x="{LEFT + plot_w}" y="{HEIGHT - 8}" text-anchor="end" font-size="11" '
             f'fill="currentColor">{last}</text>']
    for i, (key, values) in enumerate(series.items()):
        colour, dash = STYLES[i % len(STYLES)], DASHES[i % len(DASHES)]
        points = " ".join(f"{x(j):.1f},{y(n):.1f}" for j, n in enumerate(values))
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashed} '
                     f'points="{points}"/>')
        ly = TOP + 14 + i * 18
        parts.append(f'<line x1="{WIDTH - RIGHT + 12}" y1="{ly - 4}" x2="{WIDTH - RIGHT + 36}" '
                     f'y2="{ly - 4}" stroke="{colour}" stroke-width="2"{dashed}/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 42}" y="{ly}" font-size="11" fill="currentColor">'
                     f'{escape(section_title(key))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
