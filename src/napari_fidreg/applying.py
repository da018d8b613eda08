"""``fidreg apply``: a saved registration applied to other channels' stacks and to spot tables.

- Stacks (TIFF/Zarr) are corrected like the fiducial stack (:func:`napari_fidreg.core.warp`).
- Localization tables (``.csv``/``.tsv``) have their ``z, y, x`` columns mapped into the
  reference frame through the block field's inverse (:func:`napari_fidreg.core.points.map_points`);
  every other column, and the order of rows, is kept.
- A batch's output folder in place of one ``.shifts.json`` gives each file its round's
  registration: see :func:`match_rounds` for how a file is matched to its round.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core.errors import FidregError
from .core.io import channel_count, read_stack, stem
from .core.points import map_points
from .core.progress import ProgressFn, drain
from .core.result import Registration
from .core.validate import checked_voxel_size
from .core.warp import iter_warp
from .core.writers import atomic_write_text, write_stack

TABLE_SUFFIXES = (".csv", ".tsv")
SEPARATORS = r"[_\-.\s]+"


def is_table(path: Path) -> bool:
    return path.name.lower().endswith(TABLE_SUFFIXES)


@dataclass(frozen=True)
class Match:
    """A file to correct and the registration of its round (None: the reference round, left as it is)."""

    path: Path
    shifts: Path | None
    round: str


def load_round_results(folder: Path) -> tuple[dict[str, Path], str]:
    """The ``.shifts.json`` files of a batch's output folder by round name, and the reference's name."""
    found = sorted(folder.glob("*.shifts.json"))
    if not found:
        subs = [q.name for q in sorted(folder.iterdir()) if q.is_dir() and any(q.glob("*.shifts.json"))]
        hint = f": it has per-field folders ({', '.join(subs[:3])}); give one field's folder" if subs else ""
        raise FidregError(f"{folder}: no .shifts.json in this folder{hint}")
    rounds, references = {}, set()
    for p in found:
        reg = Registration.load(p)
        rounds[p.name[: -len(".shifts.json")]] = p
        if reg.reference:
            references.add(reg.reference)
    if len(references) > 1:
        raise FidregError(
            f"{folder}: its results were registered onto different references ({', '.join(sorted(references))})"
        )
    return rounds, next(iter(references), "")


def match_rounds(
    files: list[Path], rounds: dict[str, Path], reference: str, *, pattern: str | None = None
) -> list[Match]:
    """Pair each file with its round's registration; refuse what is ambiguous.

    Without ``pattern``: file names are cut into words at ``_ - .`` and spaces; words
    that every fiducial name holds (``beads``, ``fov1``, ``ch00``) say nothing of the round
    and are left out; a file goes with the round (or the reference round) that shares
    the most remaining words with it, and only if that round is the one best match:
    ``H2R2_cy5_signal.tif`` goes with ``H2R2_beads``, not ``H12R12_beads``. With
    ``pattern``, a regular expression: its first group (or whole match) in a file's
    name and in each round's name is the round's key, and the keys must be equal.
    A file of the reference round gets ``shifts=None``: it is already in the
    reference frame.
    """
    names = dict(rounds)
    if reference and reference not in names:
        names[reference] = None  # type: ignore[assignment]
    out = []
    if pattern is not None:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise FidregError(f"--match {pattern!r} is not a regular expression: {exc}") from None

        def key(name: str) -> str | None:
            m = rx.search(name)
            return None if m is None else (m.group(1) if rx.groups else m.group(0))

        by_key: dict[str, list[str]] = {}
        for n in names:
            if key(n) is not None:
                by_key.setdefault(key(n), []).append(n)
        for f in files:
            k = key(stem(f))
            found = by_key.get(k, []) if k is not None else []
            if len(found) != 1:
                what = "no round" if not found else f"{len(found)} rounds ({', '.join(found)})"
                said = f"gives the key {k!r}, which matches {what}" if k is not None else "finds no key in its name"
                raise FidregError(f"{f.name}: --match {pattern} {said}")
            out.append(Match(f, names[found[0]], found[0]))
        return out
    words = {n: _words(n) for n in names}
    common = set.intersection(*(set(w) for w in words.values())) if len(words) > 1 else set()
    for f in files:
        mine = set(_words(stem(f))) - common
        scores = {n: len(mine & (set(w) - common)) for n, w in words.items()}
        best = max(scores.values(), default=0)
        top = [n for n, s in scores.items() if s == best]
        if best == 0:
            raise FidregError(
                f"{f.name}: matches no round of the results ({', '.join(list(names)[:3])} ...); "
                "name the round's key with --match REGEX"
            )
        if len(top) > 1:
            raise FidregError(f"{f.name}: matches several rounds equally ({', '.join(top[:4])}); use --match REGEX")
        out.append(Match(f, names[top[0]], top[0]))
    return out


def _words(name: str) -> list[str]:
    return [w for w in re.split(SEPARATORS, name.lower()) if w]


def output_paths(matches: list[Match], out: Path) -> list[Path]:
    """Where each file's corrected copy goes: ``out`` itself for a single file named
    like one (``.tif``, ``.csv`` ...) or that exists, else ``out/<name>.registered.tif`` (``.csv``/``.tsv``
    for tables). Refused: an output that is an input, two inputs of the same name."""
    from .preflight import check_output_file

    single = len(matches) == 1 and (out.suffix.lower() in (".tif", ".tiff", ".csv", ".tsv") or out.is_file())
    targets = []
    for m in matches:
        suffix = m.path.suffix.lower() if is_table(m.path) else ".tif"
        target = out if single else out / f"{stem(m.path)}.registered{suffix}"
        check_output_file(target, [m.path] + ([m.shifts] if m.shifts else []))
        targets.append(target)
    if len(set(targets)) < len(targets):
        raise FidregError("two inputs have the same name: their outputs would overwrite each other")
    return targets


def apply_to_file(
    path: Path,
    target: Path,
    reg: Registration | None,
    *,
    columns=("z", "y", "x"),
    units: str = "px",
    voxel_size=None,
    use_blocks: bool = True,
    progress: ProgressFn | None = None,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Write ``path`` (a stack or a table) corrected by ``reg`` to ``target`` (atomically).

    ``reg=None``: a file of the reference round, written unchanged. ``warn`` is told
    when the stack's shape is not the registered stack's.
    """
    if is_table(path):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise FidregError(f"{path}: cannot read the table ({exc})") from None
        if reg is not None:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            try:
                text = map_table(
                    reg, text, columns=columns, units=units, voxel_size=voxel_size,
                    use_blocks=use_blocks, delimiter=delimiter,
                )  # fmt: skip
            except FidregError as exc:
                raise FidregError(f"{path}: {exc}") from None
        return atomic_write_text(target, text)
    if channel_count(path) > 1:
        return _apply_to_channels(path, target, reg, use_blocks=use_blocks, progress=progress, warn=warn)
    stack = read_stack(path)
    data = stack.data
    if reg is not None:
        reg = _fitted(reg, data.shape, warn, single=f"{path} is a single image", other=f"{path} has shape")
        gen = iter_warp(data, reg, output_shape=data.shape, use_blocks=use_blocks)
        data = drain(gen, (lambda t: progress(t.about(path.name))) if progress else None)
    voxel = stack.voxel_size or (reg.voxel_size if reg is not None else None)
    return write_stack(target, data[0] if stack.ndim == 2 else data, voxel_size=voxel)


def _fitted(reg: Registration, shape, warn, *, single: str, other: str) -> Registration:
    """``reg`` for a stack of ``shape`` (z, y, x): in the (y, x) plane for a single image (a
    projection) of a round registered as stacks; ``warn`` told either way when the shapes differ."""
    if shape[0] == 1 and reg.moving_shape[0] > 1:
        reg = reg.in_plane()
        if warn is not None:
            warn(f"{single}: {reg.warnings[-1]}")
    elif tuple(shape) != tuple(reg.moving_shape) and warn is not None:
        warn(f"{other} {tuple(shape)}, the registered stack had {tuple(reg.moving_shape)}")
    return reg


def _apply_to_channels(path: Path, target: Path, reg: Registration | None, *, use_blocks, progress, warn) -> Path:
    """Every channel of a hyperstack (ImageJ ZCYX, OME CZYX...) corrected alike, written as
    an ImageJ ZCYX hyperstack (the reference round's unchanged)."""
    stack = read_stack(path, channels=True)  # (channel, z, y, x), in memory
    data = stack.data
    if reg is not None:
        reg = _fitted(reg, data.shape[1:], warn, single=f"{path} holds single images",
                      other=f"{path} has channels of shape")  # fmt: skip
        out = np.empty_like(data)
        for c in range(data.shape[0]):
            gen = iter_warp(data[c], reg, output_shape=data.shape[1:], use_blocks=use_blocks)
            name = f"{path.name} channel {c + 1}/{data.shape[0]}"
            out[c] = drain(gen, (lambda t, name=name: progress(t.about(name))) if progress else None)
        data = out
    voxel = stack.voxel_size or (reg.voxel_size if reg is not None else None)
    return write_stack(target, data, voxel_size=voxel, channels=True)


# -- localization tables --------------------------------------------------------------


def map_table(
    reg: Registration | None,
    text: str,
    *,
    columns: tuple[str, str, str] = ("z", "y", "x"),
    units: str = "px",
    voxel_size=None,
    use_blocks: bool = True,
    delimiter: str = ",",
) -> str:
    """The table ``text`` with its (z, y, x) columns mapped into the reference frame.

    ``units="um"``: the columns are in µm (converted with ``voxel_size``, default the
    registration's) and written back in µm. ``reg=None`` (the reference round) keeps
    the positions. Every other column and the order of rows are kept.
    """
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise FidregError("the table is empty (no header row)")
    header = rows[0]
    lowered = [h.strip().lower() for h in header]
    idx = []
    for c in columns:
        if c.lower() not in lowered:
            raise FidregError(f"no column {c!r} in the table (columns: {', '.join(header)}); name them with --columns")
        idx.append(lowered.index(c.lower()))
    # blank lines (a trailing newline too many, a spreadsheet's empty rows) are no spots
    numbered = [(n, row) for n, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    body = [row for _, row in numbered]
    pts = np.empty((len(body), 3))
    for j, (r, row) in enumerate(numbered):
        for k, i in enumerate(idx):
            try:
                pts[j, k] = float(row[i])
            except (ValueError, IndexError):
                value = row[i] if i < len(row) else "(missing)"
                raise FidregError(f"line {r}: column {columns[k]!r} is not a number: {value!r}") from None
    if units not in ("px", "um"):
        raise FidregError(f"units must be 'px' or 'um', got {units!r}")
    scale = np.ones(3)
    if units == "um":
        vs = voxel_size or (reg.voxel_size if reg is not None else None)
        if vs is None:
            raise FidregError("the table is in µm but the voxel size is unknown: give it with --voxel-size Z,Y,X")
        scale = np.asarray(checked_voxel_size(vs))
    if reg is not None and len(body):
        pts = map_points(reg, pts / scale, use_blocks=use_blocks) * scale
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    for row, p in zip(body, pts):
        row = list(row)
        for k, i in enumerate(idx):
            row[i] = repr(round(float(p[k]), 6))
        writer.writerow(row)
    return out.getvalue()
