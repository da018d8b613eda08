"""Series and whole experiments on the command line: fields x rounds, one drift table per field.

A *field* is a reference stack and the moving stacks of the other rounds, with an
output folder. ``fidreg register REF MOV...`` is one field; ``fidreg register
--reference-round KEY FOLDER...`` makes one field per folder (each with its own
reference: the stack whose name holds ``KEY`` as a whole word) and writes each field's
results into ``--out/<folder name>/``. Every (field, round) pair is one job of
:func:`napari_fidreg.batch.run_batch`, so fields and rounds run side by side on dask.

Each field of two or more moving stacks has a ``drift.csv``, rewritten as its rounds finish, and its ``drift.png``
once the last one is done (:mod:`napari_fidreg.outputs`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch import Job, Outcome, expand_moving, run_batch, stacks_in
from .core.drift import DriftRow, natural_key
from .core.errors import FidregError
from .core.io import stem
from .core.params import Params
from .core.progress import ProgressFn
from .outputs import write_drift


@dataclass
class Field:
    """One field of view: its reference, its other rounds (in round order) and its output folder."""

    name: str
    reference: Path
    movings: list[Path]
    out_dir: Path
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def rows(self) -> list[DriftRow]:
        """The drift table so far: the rounds done, in round order (natural order of their names,
        however the files were given: a shell's ``H*.tif`` lists H10 before H2)."""
        rows = [DriftRow(stem(self.movings[i]), o.registration, o.error or "") for i, o in self.outcomes.items()]
        return sorted(rows, key=lambda row: natural_key(row.moving))

    @property
    def finished(self) -> bool:
        return len(self.outcomes) == len(self.movings)


def one_field(
    reference: Path, items: list[str], out_dir: Path, *, pattern: str | None = None
) -> tuple[Field, list[Path]]:
    """``REF MOV...``: one field; returns it and the earlier results left out."""
    movings, skipped = expand_moving(items, reference, pattern=pattern)
    return Field(stem(reference), Path(reference), movings, Path(out_dir)), skipped


def find_fields(folders: list[str], reference_round: str, out_dir: Path, *, pattern: str | None = None) -> list[Field]:
    """One field per folder, its reference the stack whose name holds ``reference_round``.

    A folder that holds no stack but sub-folders that do (``DATA/`` of ``DATA/fov1/``...)
    stands for those. ``pattern`` filters each folder's stacks (the fiducial channel,
    ``*_beads.tif``). Refused: a folder without a stack, without the reference round or
    with several stacks of it, two fields with the same folder name.
    """
    dirs: list[Path] = []
    for item in folders:
        p = Path(item)
        if not p.is_dir():
            raise FidregError(f"{item}: not a folder (with --reference-round, give one folder per field)")
        if stacks_in(p, pattern):
            dirs.append(p)
        else:
            subs = sorted(q for q in p.iterdir() if q.is_dir() and stacks_in(q, pattern))
            if not subs:
                what = f"matching {pattern!r}" if pattern else "(TIFF or Zarr)"
                raise FidregError(f"{item}: no stack {what} in this folder or its sub-folders")
            dirs += subs
    key = re.compile(rf"(?<![0-9A-Za-z]){re.escape(reference_round)}(?![0-9A-Za-z])")
    fields, names = [], {}
    for d in dirs:
        stacks = stacks_in(d, pattern)
        refs = [s for s in stacks if key.search(stem(s))]
        if not refs:
            raise FidregError(
                f"{d}: no stack of reference round {reference_round!r} among {len(stacks)} "
                f"(e.g. {stacks[0].name}); the round's name must be a whole word of the file name"
            )
        if len(refs) > 1:
            raise FidregError(
                f"{d}: {len(refs)} stacks of reference round {reference_round!r} "
                f"({', '.join(s.name for s in refs[:3])}); choose the fiducial channel with --pattern"
            )
        if d.name in names:
            raise FidregError(f"two fields are named {d.name!r} ({names[d.name]} and {d}): their outputs would mix")
        names[d.name] = d
        movings, _ = expand_moving([d], refs[0], pattern=pattern)
        fields.append(Field(d.name, refs[0], movings, Path(out_dir) / d.name))
    return fields


def run_fields(
    fields: list[Field],
    params: Params,
    *,
    scheduler: str | None = None,
    options: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    on_outcome: Callable[[Field, Outcome], None] | None = None,
    skip_existing: bool = False,
    plots: bool = True,
) -> list[Field]:
    """Register every round of every field; write each field's drift table (and plot).

    The jobs of all fields run together (:func:`~napari_fidreg.batch.run_batch`);
    ``on_outcome(field, outcome)`` is called as each stack finishes, after its
    field's ``drift.csv`` has been rewritten.
    """
    jobs, owner = [], []
    for f in fields:
        for i, moving in enumerate(f.movings):
            jobs.append(Job(f.reference, moving, f.out_dir, f"{f.name}/{stem(moving)}" if len(fields) > 1 else ""))
            owner.append((f, i))

    def finished(k: int, outcome: Outcome) -> None:
        f, i = owner[k]
        f.outcomes[i] = outcome
        if len(f.movings) < 2:  # one stack is no series: its JSON is the record
            if on_outcome is not None:
                on_outcome(f, outcome)
            return
        rows = f.rows()
        plot = None
        if plots and f.finished:
            from .drift_plot import drift_png

            def plot():
                return drift_png(rows, reference=stem(f.reference), title=f.name if len(fields) > 1 else "")

        write_drift(f.out_dir, rows, plot=plot)
        if on_outcome is not None:
            on_outcome(f, outcome)

    run_batch(
        jobs, params, scheduler=scheduler, options=options, progress=progress,
        on_outcome=finished, skip_existing=skip_existing,
    )  # fmt: skip
    return fields
