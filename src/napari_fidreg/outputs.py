"""The one writer of result sets, for the CLI, dask tasks and the napari Save button.

A result set for a moving stack named ``NAME`` in folder ``DIR``::

    DIR/NAME.shifts.json       the Registration (global shift, blocks, parameters, versions)
    DIR/NAME.blocks.csv        the block table (header only for a global-only run)
    DIR/NAME.registered.tif    the corrected stack (or NAME.registered.ome.zarr)
    DIR/NAME.qc.png            the QC image

``NAME`` is the moving stack's file name without its extension (:func:`result_name`),
whether it was registered from the command line or from a napari layer read from
that file, so both give the same names. The set is written into a hidden staging
folder in ``DIR`` and moved into place only when every member is complete; members
of an older set that this run does not write (say, its QC image after ``--no-qc``)
are removed, so a folder never mixes two runs' files.

A series (several moving stacks registered onto one reference) also gets::

    DIR/drift.csv              one row per moving stack (:mod:`napari_fidreg.core.drift`)
    DIR/drift.png              the drift per round, with uncertainty bars (unless --no-qc)

both rewritten atomically as rounds finish, so a long batch shows its state.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .core.drift import DriftRow, drift_csv
from .core.errors import FidregError
from .core.io import read_stack, stem, stem_of_name
from .core.result import Registration
from .core.writers import (
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_parts,
    stack_writer,
    temp_prefix,
    write_stack,
    zarr_writer,
)

STACK_FORMATS = ("tif", "zarr")


@dataclass(frozen=True)
class ResultPaths:
    """Where each member of a result set goes."""

    shifts: Path
    blocks: Path
    stack: Path
    qc: Path

    def members(self) -> list[Path]:
        """Every path of the set, in writing order."""
        return [getattr(self, f.name) for f in fields(self)]


def result_name(source: str | Path) -> str:
    """The ``NAME`` of a result set: a file's name (a ``Path``) or a layer's name (a ``str``)
    without an image extension (.tif, .ome.tif, .zarr ...), with only the characters
    that no file name may hold replaced by ``_``."""
    text = stem(source.name) if isinstance(source, Path) else stem_of_name(str(source))
    return re.sub(r'[\x00-\x1f/\\:*?"<>|]+', "_", text).strip(" .") or "moving"


def result_paths(out_dir: str | Path, name: str, *, stack_format: str = "tif") -> ResultPaths:
    """The paths of the result set ``name`` in ``out_dir``."""
    if stack_format not in STACK_FORMATS:
        raise ValueError(f"stack_format must be one of {STACK_FORMATS}, got {stack_format!r}")
    d = Path(out_dir)
    suffix = ".registered.ome.zarr" if stack_format == "zarr" else ".registered.tif"
    return ResultPaths(d / f"{name}.shifts.json", d / f"{name}.blocks.csv", d / f"{name}{suffix}", d / f"{name}.qc.png")


DRIFT_TABLE = "drift.csv"
DRIFT_PLOT = "drift.png"


def write_drift(out_dir: str | Path, rows: list[DriftRow], *, plot: Callable[[], bytes] | None = None) -> list[Path]:
    """Write ``DIR/drift.csv`` (and ``DIR/drift.png`` from ``plot()``, else remove an older one), atomically."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(d / DRIFT_TABLE, drift_csv(rows))]
    if plot is not None:
        written.append(atomic_write_bytes(d / DRIFT_PLOT, plot()))
    else:
        _remove(d / DRIFT_PLOT)  # an earlier run's plot would not show this table
    return written


def complete_result_set(paths: ResultPaths, *, stack: bool, qc: bool) -> Registration | None:
    """The registration of a complete result set at ``paths``, or None.

    Complete: its JSON loads and every member a run with these options writes
    (the corrected stack when ``stack``, the QC image when ``qc``) is there.
    """
    wanted = [paths.shifts, paths.blocks] + ([paths.stack] if stack else []) + ([paths.qc] if qc else [])
    if not all(p.exists() for p in wanted):
        return None
    try:
        reg = Registration.load(paths.shifts)
        if stack:
            read_stack(paths.stack, lazy=True)  # a corrected stack that opens
    except FidregError:
        return None
    return reg


def other_format(paths: ResultPaths) -> Path:
    """The corrected stack's path in the format this set does not use (an older run's)."""
    s = str(paths.stack)
    return Path(s[: -len(".ome.zarr")] + ".tif" if s.endswith(".ome.zarr") else s[: -len(".tif")] + ".ome.zarr")


Corrected = np.ndarray | Callable[[np.ndarray], object]
"""A corrected stack, or a function that writes it plane by plane into the array it is given."""


def save_result_set(
    paths: ResultPaths,
    reg: Registration,
    *,
    corrected: Corrected | None = None,
    shape=None,
    dtype=None,
    qc: Callable[[np.ndarray | None], bytes] | None = None,
) -> list[Path]:
    """Write a result set; returns the paths written.

    Parameters
    ----------
    paths : ResultPaths
    reg : Registration
    corrected : array, callable or None
        The corrected stack, or a function ``fill(out)`` that writes it into a
        memory-mapped (z, y, x) ``out`` (bounded memory, however large the stack);
        None writes no stack.
    shape, dtype :
        The file's shape and dtype with a callable ``corrected``: (z, y, x), or
        (y, x) to write a single image back as one.
    qc : callable or None
        ``qc(stack)`` returns the QC image's PNG bytes; it is given the corrected
        stack as written (read back lazily from the file) or None. None writes no
        QC image.
    """
    out_dir = paths.shifts.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(paths.shifts)  # a run that was killed left its staging folder
    staging = Path(tempfile.mkdtemp(prefix=temp_prefix(paths.shifts), suffix=".part", dir=out_dir))
    try:
        staged = ResultPaths(*(staging / p.name for p in paths.members()))
        ready = [(staged.shifts, paths.shifts), (staged.blocks, paths.blocks)]
        reg.save(staged.shifts)
        atomic_write_text(staged.blocks, reg.blocks_csv())
        written_stack = None
        if corrected is not None:
            _write_stack(staged.stack, corrected, reg, shape, dtype)
            ready.append((staged.stack, paths.stack))
            written_stack = staged.stack
        if qc is not None:
            stack = read_stack(written_stack, lazy=True).data if written_stack is not None else None
            atomic_write_bytes(staged.qc, qc(stack))
            ready.append((staged.qc, paths.qc))
        # every member is complete: replace the old set as a whole
        for old in [*paths.members(), other_format(paths)]:
            _remove(old)
        for src, dst in ready:
            os.replace(src, dst)
        return [dst for _, dst in ready]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_stack(path: Path, corrected: Corrected, reg: Registration, shape, dtype) -> None:
    vs = reg.voxel_size
    if isinstance(corrected, np.ndarray):
        if path.name.endswith(".zarr"):
            with zarr_writer(path, corrected.shape, corrected.dtype, voxel_size=vs) as out:
                out[...] = corrected
        else:
            write_stack(path, corrected, voxel_size=vs)
        return
    if path.name.endswith(".zarr"):
        with zarr_writer(path, (1,) * (3 - len(shape)) + tuple(shape), dtype, voxel_size=vs) as out:
            corrected(out)
        return
    with stack_writer(path, shape, dtype, voxel_size=vs) as out:  # a single image is one plane
        corrected(out)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
