"""File-to-file registration of one moving stack: the unit of work of the CLI and of dask tasks.

Each call reads its own inputs (so parallel tasks never ship arrays around),
registers, corrects and writes the result set (:mod:`.outputs`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .core.errors import FidregError
from .core.io import Stack, read_stack, series_count
from .core.params import DEFAULT_WORKERS, Params, Subvolume
from .core.progress import ProgressFn, drain
from .core.qc import Reduction, display_bin, projections
from .core.register import iter_register
from .core.result import Registration
from .core.warp import iter_warp
from .outputs import STACK_FORMATS, result_name, result_paths, save_result_set
from .preflight import naming_files, outputs_are_not_inputs


def register_files(
    reference: str | Path,
    moving: str | Path,
    out_dir: str | Path,
    params: Params | None = None,
    *,
    subvolume: Subvolume | None = None,
    voxel_size=None,
    use_blocks: bool = True,
    write_stack_file: bool = True,
    write_qc: bool = True,
    stack_format: str = "tif",
    series: int | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
) -> tuple[Registration, list[Path]]:
    """Register ``moving`` onto ``reference`` (TIFF files or Zarr stores) and write its result set.

    Writes ``<name>.shifts.json``, ``<name>.blocks.csv``, ``<name>.registered.tif``
    (or ``.registered.ome.zarr`` with ``stack_format="zarr"``) and ``<name>.qc.png``
    into ``out_dir`` (see :mod:`napari_fidreg.outputs`). Inputs are read lazily and
    never written: an output path that is an input is refused. ``series`` picks the
    image series of multi-series (OME-)TIFFs (default the first, with a warning).
    ``progress`` receives every tick, said of the moving stack's name.
    """
    params = params or Params()
    reference, moving = Path(reference), Path(moving)
    if stack_format not in STACK_FORMATS:
        raise FidregError(f"stack_format must be 'tif' or 'zarr', got {stack_format!r}")
    paths = result_paths(out_dir, result_name(moving), stack_format=stack_format)
    outputs_are_not_inputs(paths.members(), [reference, moving])
    ref, ref_qc = _reference_stack(reference, series)
    mov = _read_series(moving, series)
    report = (lambda tick: progress(tick.about(mov.name))) if progress else None
    vs = voxel_size or ref.voxel_size or mov.voxel_size
    # The QC projections of both inputs come from the registration's own read of them, and
    # the corrected stack's are reduced as it is written: the QC image reads no stack twice
    # (at 2048^2 the second reads and reductions were ~1.4 s of the default job).
    scanned: dict = dict(ref_qc)  # the reference's, when the previous stack of a batch made them
    with _naming_files(reference, moving):
        gen = iter_register(
            ref.data,
            mov.data,
            params,
            subvolume=subvolume,
            voxel_size=vs,
            reference_name=ref.name,
            moving_name=mov.name,
            workers=workers,
            projections_out=scanned if write_qc else None,
        )
    with (
        _out_of_memory_hint("registering", "--subvolume to restrict the region, or --workers 1"),
        _naming_files(reference, moving),
    ):
        reg = drain(gen, report)
    reg.reference_file, reg.moving_file = str(reference.resolve()), str(moving.resolve())
    differ = [] if voxel_size is not None else _voxel_sizes_differ(ref, mov)  # the user's size is the one used
    reg.warnings[:0] = ref.notes + mov.notes + differ  # which series was read, ...
    if scanned.get("reference") is not None:
        ref_qc.update(reference=scanned["reference"], bin=scanned["bin"])
    b = scanned.get("bin") or display_bin(ref.data.shape)
    # fed by the stack's writing: without a stack file (--no-stack) the QC projects the in-memory correction
    reduction = Reduction(ref.data.shape, b) if write_qc and write_stack_file and mov.ndim == 3 else None

    def correct(out=None):
        gen = iter_warp(
            mov.data,
            reg,
            output_shape=ref.data.shape,
            use_blocks=use_blocks,
            workers=workers,
            out=out,
            on_plane=reduction.add_plane if reduction is not None and out is not None else None,  # out: the file
        )
        with _out_of_memory_hint("correcting the stack", "--no-stack, or --subvolume"):
            return drain(gen, report)

    def qc_image(corrected):
        from .figures import qc_png

        with _out_of_memory_hint("drawing the QC image", "--no-qc"):
            if reduction is not None and reduction.complete:
                after = reduction.projections()
            else:  # no corrected stack written (--no-stack), or a single image
                after = projections(corrected if corrected is not None else correct(), bin=b)
            return qc_png(
                scanned.get("reference") or projections(ref.data, bin=b),
                scanned.get("moving") or projections(mov.data, bin=b),
                after,
                title=f"{mov.name} onto {ref.name}",
                voxel_size=vs,
                registration=reg,
            )

    written = save_result_set(
        paths,
        reg,
        corrected=correct if write_stack_file else None,
        shape=ref.data.shape[1:] if mov.ndim == 2 else ref.data.shape,  # a single image stays one
        dtype=mov.data.dtype.newbyteorder("="),  # big-endian input, native output
        qc=qc_image if write_qc else None,
    )
    return reg, written


_last_reference: list = []  # [(key, Stack, its QC projections)]: the reference of the previous call
_reference_lock = threading.Lock()


def _reference_stack(path: Path, series: int | None) -> tuple[Stack, dict]:
    """The reference, read once for the stacks of a batch that share it (a compressed one is
    decoded in full: 9 ms a Bintu round, 1 s at 2048^2), and a dict that keeps its QC
    projections for them (12 ms a Bintu round). The same file, unchanged on disk (path,
    size and modification time), is not read again; the last one is kept, no more."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, series)
    with _reference_lock:
        if _last_reference and _last_reference[0][0] == key:
            return _last_reference[0][1], _last_reference[0][2]
    stack = _read_series(path, series)
    qc: dict = {}
    with _reference_lock:
        _last_reference[:] = [(key, stack, qc)]
    return stack, qc


def _read_series(path: Path, series: int | None) -> Stack:
    """The stack of ``path`` (memory-mapped where the file allows). ``series`` concerns files
    of several image series only (a batch may mix them with plain stacks); a file of one
    that was asked for another gets a note saying it was read whole."""
    if series is None or series_count(path) > 1:
        return read_stack(path, lazy=True, series=series)
    stack = read_stack(path, lazy=True)
    if series != 0:
        stack.notes.append(f"{path.name} holds a single image series: --series {series} does not apply to it")
    return stack


def _voxel_sizes_differ(ref: Stack, mov: Stack) -> list[str]:
    """A warning when the two files' pixel sizes in y/x differ (by more than 1 %): another objective
    or binning, whose pixel shifts do not mean what they say; the reference's size is the one used."""
    a, b = ref.voxel_size, mov.voxel_size
    # y/x only: a file without a z step reads as 1.0 (OME without PhysicalSizeZ, ImageJ without spacing)
    if a is None or b is None or all(abs(x - y) <= 0.01 * max(abs(x), abs(y)) for x, y in zip(a[1:], b[1:])):
        return []
    sizes = [", ".join(f"{x:g}" for x in v) for v in (a, b)]
    return [
        f"the voxel sizes differ: reference ({sizes[0]}) µm, moving ({sizes[1]}) µm (z, y, x); the reference's "
        "is used for the µm figures, and a shift in pixels between stacks sampled differently is no drift"
    ]


@contextmanager
def _out_of_memory_hint(stage: str, hint: str) -> Iterator[None]:
    """Name the stage that ran out of memory and the option that would help."""
    try:
        yield
    except MemoryError:
        raise FidregError(f"out of memory while {stage} (try {hint})") from None


@contextmanager
def _naming_files(reference: Path, moving: Path) -> Iterator[None]:
    """Errors about 'the reference' or 'the moving stack' name the file they are about."""
    try:
        yield
    except FidregError as exc:
        text = naming_files(str(exc), reference, moving)
        if text != str(exc):
            raise FidregError(text) from None
        raise
