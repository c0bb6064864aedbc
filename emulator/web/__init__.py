"""What a browser is given: the live dashboard's page and scripts, the chart renderer that
report.html inlines, and the charting library they use, uPlot (MIT; its licence is
static/uPlot.LICENSE), shipped as package data so nothing is fetched or built at run time.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

# name -> Content-Type: every file a page may ask for (nothing else is served).
ASSETS: dict[str, str] = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "charts.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
}
UPLOT_VERSION = "1.6.32"


@cache
def asset(name: str) -> bytes:
    """One of ASSETS, read once from the installed package."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__package__).joinpath("static", name).read_bytes()


def asset_text(name: str) -> str:
    return asset(name).decode("utf-8")
