"""The Registration result: everything needed to audit and re-apply a registration."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import result_checks as checks
from .errors import FidregError
from .params import Params, Subvolume, check_subvolume

SIGN_CONVENTION = (
    "shift = (dz, dy, dx) in pixels to apply to the moving stack to align it onto the "
    "reference (scikit-image phase_cross_correlation convention): "
    "corrected(p) = moving(p - shift(p)); the moving stack's content is displaced by -shift"
)
FORMAT = "napari-fidreg/registration"
FORMAT_VERSION = 1


@dataclass
class Block:
    """One block of the grid.

    ``shift`` is the shift used for correction: the measured one for inliers, the
    one filled from neighbours for rejected blocks. ``measured_shift`` is what the
    correlation found (None when the block was not measured, or its peak lay on the edge of
    the search range).
    """

    index: tuple[int, int, int]
    origin: tuple[int, int, int]
    size: tuple[int, int, int]
    shift: tuple[float, float, float]
    measured_shift: tuple[float, float, float] | None
    score: float
    sharpness: float
    inlier: bool
    reason: str = ""
    """Why the block was rejected ('' for inliers)."""

    @property
    def centre(self) -> np.ndarray:
        return np.asarray(self.origin, float) + (np.asarray(self.size, float) - 1) / 2


@dataclass
class Registration:
    """Result of registering one moving stack onto a reference stack.

    Attributes
    ----------
    global_shift : (dz, dy, dx)
        Shift to apply to the moving stack, in pixels (see ``SIGN_CONVENTION``).
    global_score, global_sharpness : float
        Quality of the global estimate (normalized correlation in [-1, 1];
        peak-to-sidelobe ratio).
    global_confident : bool
        False when the shift is not reproduced across the field (another field or
        channel, too few fiducials, the camera's fixed pattern) or is only the coarse,
        binned estimate; a warning says which (:mod:`.confidence`). Check it by eye.
    global_uncertainty : (dz, dy, dx) or None
        Per-axis uncertainty of the global shift: the blocks' standard error (widened
        for few), the refinement step and a floor (:mod:`.confidence`); three times it
        bounded the error in ~95 % of the known-offset cases of docs/validation.md.
        It includes any deformation. None when the shift is not confident.
    consensus_shift : (dz, dy, dx) or None
        Median of the inlier block shifts, when blocks were measured.
    blocks : list of Block
        The block grid in (z, y, x) raster order; empty for a global-only run.
    grid_shape : (gz, gy, gx)
    reference_shape, moving_shape : (z, y, x)
    subvolume : ((z0, z1), (y0, y1), (x0, x1)) or None
        The region of the reference the registration was restricted to (None:
        the whole common volume).
    voxel_size : (z, y, x) in micrometres, or None when unknown
    reference, moving : str
        The stacks' names (file stems, layer names).
    reference_file, moving_file : str
        The files registered, as absolute paths, when the stacks came from files (the CLI,
        or napari layers opened from a file); "" otherwise (null in the JSON).
    params : Params
    warnings : list of str
        Things the user should know (low score, shapes differ, ...).
    """

    global_shift: tuple[float, float, float]
    global_score: float
    global_sharpness: float
    reference_shape: tuple[int, int, int]
    moving_shape: tuple[int, int, int]
    params: Params
    global_confident: bool = True
    global_uncertainty: tuple[float, float, float] | None = None
    consensus_shift: tuple[float, float, float] | None = None
    blocks: list[Block] = field(default_factory=list)
    grid_shape: tuple[int, int, int] = (0, 0, 0)
    subvolume: Subvolume | None = None
    voxel_size: tuple[float, float, float] | None = None
    reference: str = ""
    moving: str = ""
    reference_file: str = ""  # the files registered (absolute paths), "" for arrays in memory
    moving_file: str = ""
    warnings: list[str] = field(default_factory=list)
    version: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if not self.version:
            from .. import __version__

            self.version = __version__

    # -- derived views -------------------------------------------------------
    @property
    def has_blocks(self) -> bool:
        return bool(self.blocks)

    def global_shift_um(self) -> tuple[float, float, float] | None:
        """Global shift in micrometres, when the voxel size is known."""
        if self.voxel_size is None:
            return None
        return tuple(float(s * v) for s, v in zip(self.global_shift, self.voxel_size))  # type: ignore[return-value]

    def block_field(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """Block centres per axis and shifts on the grid, shape (gz, gy, gx, 3)."""
        if not self.blocks:
            raise FidregError("this registration has no blocks (global shift only)")
        gz, gy, gx = self.grid_shape
        shifts = np.array([b.shift for b in self.blocks], dtype=np.float64).reshape(gz, gy, gx, 3)
        cz = np.array([self.blocks[i * gy * gx].centre[0] for i in range(gz)])
        cy = np.array([self.blocks[j * gx].centre[1] for j in range(gy)])
        cx = np.array([self.blocks[k].centre[2] for k in range(gx)])
        return (cz, cy, cx), shifts

    def in_plane(self) -> Registration:
        """This registration without its z component, for a single image of the round (a
        projection, one plane): the global and block shifts with dz = 0, the y/x field kept.
        Applied as it is, a z shift moves a lone plane out of itself (an empty image)."""
        blocks = [replace(b, shift=(0.0, *b.shift[1:])) for b in self.blocks]
        shift = (0.0, *self.global_shift[1:])
        note = f"applied in the (y, x) plane only: the z shift {self.global_shift[0]:.3f} px dropped"
        return replace(self, global_shift=shift, blocks=blocks, warnings=[*self.warnings, note])

    # -- serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``global_shift`` and ``blocks`` sit at the top level."""
        d: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "global_shift": [float(v) for v in self.global_shift],
            "global_shift_um": None if self.voxel_size is None else list(self.global_shift_um()),
            "global_score": float(self.global_score),
            "global_sharpness": float(self.global_sharpness),
            "global_confident": bool(self.global_confident),
            "global_uncertainty": None
            if self.global_uncertainty is None
            else [float(v) for v in self.global_uncertainty],
            "consensus_shift": None if self.consensus_shift is None else [float(v) for v in self.consensus_shift],
            "units": "pixels (shift_um: micrometres)",
            "axes": "zyx",
            "sign_convention": SIGN_CONVENTION,
            "voxel_size_um": None if self.voxel_size is None else [float(v) for v in self.voxel_size],
            "reference": self.reference,
            "moving": self.moving,
            "reference_file": self.reference_file or None,
            "moving_file": self.moving_file or None,
            "reference_shape": list(self.reference_shape),
            "moving_shape": list(self.moving_shape),
            "grid_shape": list(self.grid_shape),
            "subvolume": None if self.subvolume is None else [list(r) for r in self.subvolume],
            "blocks": [
                {
                    "index": list(b.index),
                    "origin": list(b.origin),
                    "size": list(b.size),
                    "shift": [float(v) for v in b.shift],
                    "measured_shift": None if b.measured_shift is None else [float(v) for v in b.measured_shift],
                    "score": float(b.score),
                    "sharpness": float(b.sharpness),
                    "inlier": bool(b.inlier),
                    "reason": b.reason,
                }
                for b in self.blocks
            ],
            "parameters": self.params.to_dict(),
            "warnings": list(self.warnings),
            "software": {"napari-fidreg": self.version},
            "created": self.created,
        }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Registration:
        """Inverse of :meth:`to_dict`; refuses documents that are not registrations, and
        registrations that could not be applied (see :mod:`.result_checks`)."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise FidregError("not a napari-fidreg registration (missing 'format': " + repr(FORMAT) + ")")
        version = d.get("format_version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise FidregError(f"format_version must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise FidregError(f"registration format version {version} is newer than this napari-fidreg reads")
        try:
            reg = cls._from_checked_dict(d)
            checks.check_grid(reg.blocks, reg.grid_shape, reg.moving_shape)
        except FidregError as exc:
            raise FidregError(f"malformed registration document: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FidregError(f"malformed registration document: {exc!r}") from None
        return reg

    @classmethod
    def _from_checked_dict(cls, d: dict[str, Any]) -> Registration:
        moving_shape = checks.numbers(d["moving_shape"], "moving_shape", integer=True, positive=True)
        blocks = []
        for i, b in enumerate(d["blocks"]):
            if not isinstance(b, dict):
                raise FidregError(f"block {i} is not an object")
            measured = b["measured_shift"]
            blocks.append(
                Block(
                    index=checks.numbers(b["index"], f"block {i} index", integer=True),
                    origin=checks.numbers(b["origin"], f"block {i} origin", integer=True),
                    size=checks.numbers(b["size"], f"block {i} size", integer=True, positive=True),
                    shift=checks.numbers(b["shift"], f"block {i} shift"),
                    measured_shift=None if measured is None else checks.numbers(measured, f"block {i} measured_shift"),
                    score=checks.number(b["score"], f"block {i} score"),
                    sharpness=checks.number(b["sharpness"], f"block {i} sharpness"),
                    inlier=bool(b["inlier"]),
                    reason=str(b.get("reason", "")),
                )
            )
        vs = d.get("voxel_size_um")
        cs = d.get("consensus_shift")
        unc = d.get("global_uncertainty")
        parameters = dict(d["parameters"])
        # documents from before 0.2 kept execution and correction options and the
        # region among the parameters: the first two do not change the result
        parameters.pop("workers", None)
        parameters.pop("fill_value", None)
        sub = d.get("subvolume", parameters.pop("subvolume", None))
        global_shift = checks.numbers(d["global_shift"], "global_shift")
        checks.check_overlap(global_shift, moving_shape, "global_shift")
        warnings = d.get("warnings", [])
        if not isinstance(warnings, list):
            raise FidregError("warnings must be a list of strings")
        return cls(
            global_shift=global_shift,
            global_score=checks.number(d["global_score"], "global_score"),
            global_sharpness=checks.number(d["global_sharpness"], "global_sharpness"),
            # documents from before this field said it only in a warning
            global_confident=bool(
                d.get("global_confident", not any("coarse, binned estimate" in str(w) for w in warnings))
            ),
            global_uncertainty=None if unc is None else checks.numbers(unc, "global_uncertainty"),
            reference_shape=checks.numbers(d["reference_shape"], "reference_shape", integer=True, positive=True),
            moving_shape=moving_shape,
            params=Params.from_dict(parameters),
            subvolume=None if sub is None else check_subvolume(sub),
            consensus_shift=None if cs is None else checks.numbers(cs, "consensus_shift"),
            blocks=blocks,
            grid_shape=checks.numbers(d["grid_shape"], "grid_shape", integer=True),
            voxel_size=None if vs is None else checks.numbers(vs, "voxel_size_um", positive=True),
            reference=str(d.get("reference", "")),
            moving=str(d.get("moving", "")),
            reference_file=str(d.get("reference_file") or ""),
            moving_file=str(d.get("moving_file") or ""),
            warnings=[str(w) for w in warnings],
            version=str((d.get("software") or {}).get("napari-fidreg", "")),
            created=str(d.get("created", "")),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Registration:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FidregError(f"not valid JSON: {exc}") from None
        except RecursionError:
            raise FidregError("not a registration: the JSON is nested too deeply") from None
        return cls.from_dict(d)

    def save(self, path: str | Path) -> Path:
        """Write the JSON atomically."""
        from .writers import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Registration:
        path = Path(path)
        if not path.is_file():
            raise FidregError(f"{path}: no such file")
        try:
            return cls.from_json(path.read_text(encoding="utf-8", errors="replace"))
        except FidregError as exc:
            raise FidregError(f"{path}: {exc}") from None

    def blocks_csv(self) -> str:
        """The block table as CSV text (one row per block, header first; RFC 4180 quoting)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(BLOCK_COLUMNS)
        for b in self.blocks:
            measured = ["", "", ""] if b.measured_shift is None else [f"{v:.4f}" for v in b.measured_shift]
            writer.writerow(
                [*b.index, *b.origin, *b.size, *(f"{v:.4f}" for v in b.shift), *measured]
                + [f"{b.score:.4f}", f"{b.sharpness:.2f}", int(b.inlier), b.reason]
            )
        return buf.getvalue()

    def summary(self) -> str:
        """What a person reads first: the shift (px, µm), its precision and quality, then warnings.

        The CLI prints it and the napari dock shows it.
        """
        dz, dy, dx = self.global_shift
        line = f"{self.moving or 'moving'}: shift (dz, dy, dx) = ({dz:+.3f}, {dy:+.3f}, {dx:+.3f})"
        if self.global_uncertainty is not None:
            line += " ± (" + ", ".join(f"{u:.3f}" for u in self.global_uncertainty) + ")"
        line += " px"
        um = self.global_shift_um()
        if um is not None:
            line += f" = ({um[0]:+.4f}, {um[1]:+.4f}, {um[2]:+.4f}) µm"
        line += f"; score {self.global_score:.3f}, sharpness {self.global_sharpness:.0f}"
        if self.has_blocks:
            line += f"; {sum(b.inlier for b in self.blocks)}/{len(self.blocks)} blocks kept"
        lines = [line]
        if not self.global_confident:
            lines.append("  LOW CONFIDENCE: the shift could not be confirmed (see the warnings); check it by eye")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


BLOCK_COLUMNS = (
    "iz", "iy", "ix", "z0", "y0", "x0", "nz", "ny", "nx", "dz", "dy", "dx",
    "measured_dz", "measured_dy", "measured_dx", "score", "sharpness", "inlier", "reason",
)  # fmt: skip
"""Columns of :meth:`Registration.blocks_csv` (shifts in pixels, to apply to the moving stack)."""
