"""The drift table of a series: one row per moving round, the numbers of its registration.

``drift.csv`` holds, per round, the global shift of its ``.shifts.json`` (px, and µm
when the voxel size is known), its uncertainty and quality, and how many blocks were
kept, so that a series can be read (and plotted) without opening every JSON. A round
that failed has a row with its error and empty numbers, so the table shows the state
of a batch while it runs.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass

from .result import Registration

COLUMNS = (
    "moving", "dz", "dy", "dx", "dz_um", "dy_um", "dx_um",
    "uncertainty_z", "uncertainty_y", "uncertainty_x",
    "score", "sharpness", "confident", "blocks_inliers", "blocks_total", "warnings", "error",
)  # fmt: skip
"""Columns of ``drift.csv``: shifts in px to apply to the moving round (the JSON's
``global_shift``), the same in µm, the per-axis uncertainty (px, empty when not
confident), then quality; ``warnings`` joins the round's warnings with `` | ``."""


@dataclass(frozen=True)
class DriftRow:
    """One round of the drift table."""

    moving: str
    registration: Registration | None = None
    error: str = ""

    def values(self) -> list[str]:
        """The row as CSV fields (numbers at full precision, ``""`` where unknown)."""
        reg = self.registration
        if reg is None:
            return [self.moving] + [""] * (len(COLUMNS) - 3) + ["", self.error]
        um = reg.global_shift_um() or (None, None, None)
        unc = reg.global_uncertainty or (None, None, None)
        inliers = sum(b.inlier for b in reg.blocks)
        return [
            self.moving,
            *map(_num, reg.global_shift),
            *map(_num, um),
            *map(_num, unc),
            _num(reg.global_score),
            _num(reg.global_sharpness),
            str(int(reg.global_confident)),
            str(inliers) if reg.blocks else "",
            str(len(reg.blocks)) if reg.blocks else "",
            " | ".join(reg.warnings),
            self.error,
        ]


def drift_csv(rows: list[DriftRow]) -> str:
    """The drift table as CSV text (header first, rows in the order given; RFC 4180 quoting)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.values())
    return buf.getvalue()


def read_drift_csv(text: str) -> list[dict[str, str]]:
    """Parse a drift table written by :func:`drift_csv` (dicts of strings, as written)."""
    return list(csv.DictReader(io.StringIO(text)))


def natural_key(name: str) -> list:
    """Sort key that puts ``H2R2`` before ``H10R10`` (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _num(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(float(value))
