"""Shared by the benchmark and validation scripts: write a generated report, keeping the
hand-written part below a marker line when the report already exists."""

from __future__ import annotations

from pathlib import Path

from napari_fidreg.core.writers import atomic_write_text


def write_report(path: Path, generated: str, marker: str) -> None:
    """Write ``generated`` to ``path``; what followed ``marker`` in the old file is appended."""
    text = generated
    if path.exists() and marker in path.read_text():
        text += "\n" + marker + path.read_text().split(marker, 1)[1]
    atomic_write_text(path, text)
