"""Charts for the dashboard as inline SVG, drawn on the server.

No script and no ``style`` attribute: the pages run under a Content-Security-Policy that forbids
inline script and style (:mod:`freshid.web.security`), and SVG presentation attributes (``fill``,
``width``) are not style. Every chart has a text equivalent (``<title>`` and ``aria-label``) and
the numbers are printed next to the bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

COLORS = {
    "succeeded": "#2f7d4f",
    "failed": "#b3362d",
    "fresh": "#2f7d4f",
    "step_up": "#c98a12",
    "abandoned": "#7a7a7a",
    "bar": "#3b5ea8",
}
_ROW = 26
_LABEL = 170
_WIDTH = 560


def bars(title: str, rows: Sequence[tuple[str, int]], color: str = COLORS["bar"]) -> Markup:
    """One horizontal bar per (label, value)."""
    top = max((v for _, v in rows), default=0) or 1
    height = _ROW * max(1, len(rows)) + 8
    plot = _WIDTH - _LABEL - 60
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="100%" '
        f'viewBox="0 0 {_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * _ROW
        w = round(plot * value / top)
        parts.append(
            f'<text x="{_LABEL - 8}" y="{y + 16}" text-anchor="end" font-size="13" '
            f'fill="currentColor">{escape(label)}</text>'
            f'<rect x="{_LABEL}" y="{y + 3}" width="{w}" height="{_ROW - 8}" rx="3" '
            f'fill="{color}"/>'
            f'<text x="{_LABEL + w + 6}" y="{y + 16}" font-size="13" '
            f'fill="currentColor">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def stacked(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, int]]]],
) -> Markup:
    """One stacked bar per label: [(label, [(series, value), ...]), ...]."""
    top = max((sum(v for _, v in parts) for _, parts in rows), default=0) or 1
    height = _ROW * max(1, len(rows)) + 8
    plot = _WIDTH - _LABEL - 60
    out = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="100%" '
        f'viewBox="0 0 {_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, series) in enumerate(rows):
        y = 4 + i * _ROW
        x = float(_LABEL)
        out.append(
            f'<text x="{_LABEL - 8}" y="{y + 16}" text-anchor="end" font-size="13" '
            f'fill="currentColor">{escape(label)}</text>'
        )
        for name, value in series:
            w = plot * value / top
            if w > 0:
                out.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{_ROW - 8}" '
                    f'fill="{COLORS.get(name, COLORS["bar"])}">'
                    f"<title>{escape(name)}: {value}</title></rect>"
                )
            x += w
        total = sum(v for _, v in series)
        out.append(
            f'<text x="{x + 6:.1f}" y="{y + 16}" font-size="13" fill="currentColor">{total}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text is escaped above
