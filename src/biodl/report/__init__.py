"""Report layer: static figures (ROC/PR curves, learning curves, sequence logos) and
self-contained HTML reports.

All writers are atomic (temporary file in the destination directory, then
:func:`os.replace`) and return the written :class:`pathlib.Path`.
"""

from biodl.report.html import Section, format_value, render_html_report, write_html_report
from biodl.report.plots import (
    plot_learning_curves,
    plot_logos,
    plot_pr,
    plot_roc,
    pwm_information_content,
    write_bytes_atomic,
)

__all__ = [
    "Section",
    "format_value",
    "plot_learning_curves",
    "plot_logos",
    "plot_pr",
    "plot_roc",
    "pwm_information_content",
    "render_html_report",
    "write_bytes_atomic",
    "write_html_report",
]
