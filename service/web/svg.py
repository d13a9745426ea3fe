"""Small inline SVG drawings for tables (sparklines, interval bars). They only draw numbers they are given."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["interval_bar", "sparkline"]


def sparkline(
    values: Sequence[float | None], labels: Sequence[str], *, width: int = 120, height: int = 28
) -> Markup:
    """A line of shares over periods with the last point marked; the title lists every value."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return Markup('<span class="muted">—</span>')
    top = max(v for _, v in points) or 1.0
    step = (width - 6) / (len(values) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 3 + i * step, height - 3 - (height - 6) * v / top

    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in points))
    lx, ly = xy(*points[-1])
    title = "、".join(f"{lab}: {v:.0%}" for lab, v in zip(labels, values, strict=False) if v is not None)
    return Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<polyline fill="none" stroke="#34568b" stroke-width="1.5" points="{path}"/>'
        f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="2.5" fill="#34568b"/></svg>'
    )


def interval_bar(
    value: float | None,
    lo: float | None,
    hi: float | None,
    *,
    lo_axis: float,
    hi_axis: float,
    width: int = 160,
) -> Markup:
    """A point with its 95% interval on a fixed axis, with the zero line: for comparing rows of a table."""
    if value is None or lo is None or hi is None or hi_axis <= lo_axis:
        return Markup('<span class="muted">—</span>')

    def x(v: float) -> float:
        return 4 + (width - 8) * (min(max(v, lo_axis), hi_axis) - lo_axis) / (hi_axis - lo_axis)

    color = "#b03a2e" if hi < 0 else "#2e7d32" if lo > 0 else "#8c8c8c"
    label = f"{value:+.1f}（95%区間 {lo:+.1f}〜{hi:+.1f}）"
    return Markup(
        f'<svg class="ci" width="{width}" height="18" viewBox="0 0 {width} 18" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<line x1="{x(0):.1f}" y1="1" x2="{x(0):.1f}" y2="17" stroke="#bbb" stroke-dasharray="2,2"/>'
        f'<line x1="{x(lo):.1f}" y1="9" x2="{x(hi):.1f}" y2="9" stroke="{color}" stroke-width="2"/>'
        f'<line x1="{x(lo):.1f}" y1="5" x2="{x(lo):.1f}" y2="13" stroke="{color}" stroke-width="1.5"/>'
        f'<line x1="{x(hi):.1f}" y1="5" x2="{x(hi):.1f}" y2="13" stroke="{color}" stroke-width="1.5"/>'
        f'<circle cx="{x(value):.1f}" cy="9" r="3.5" fill="{color}"/></svg>'
    )
