"""The HTML report: ``render_report(summary, out_path)`` writes one self-contained ``report.html``.

``render_chart_pngs(summary)`` gives the same charts as PNG bytes by key (for e-mail attachments).
Both only display ``summary.json`` (docs/summary-schema.md); nothing here computes a statistic.
"""

from pipelines.report.charts import Chart, build_charts, render_chart_pngs
from pipelines.report.html import render_html, render_report

__all__ = ["Chart", "build_charts", "render_chart_pngs", "render_html", "render_report"]
