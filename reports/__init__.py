"""nnspec report generator: merges results folders into Markdown, HTML, JSON and figures.

Entry points: `python -m reports RESULTS_DIR ... --out DIR`, or `reports.build(folders, out)`;
`python -m reports compare OLD NEW` compares two sets of results (reports/compare_cli.py).
"""

from reports.load import ReportError
from reports.writer import build

__all__ = ["ReportError", "build"]
