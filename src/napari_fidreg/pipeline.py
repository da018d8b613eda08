"""File-to-file registration of one moving stack: the unit of work of the CLI and of dask tasks.

Each call reads its own inputs (so parallel tasks never ship arrays around),
registers, corrects and writes every output atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .core.errors import FidregError
from .core.io import atomic_write_text, read_stack, stack_writer, stem, zarr_writer
from .core.params import Params
from .core.progress import drain
from .core.qc import write_qc_figure
from .core.register import iter_register
from .core.result import Registration
from .core.warp import iter_warp

ProgressFn = Callable[[str, int, int], None]


def output_paths(out_dir: Path, moving: Path, stack_format: str = "tif") -> dict[str, Path]:
    s = stem(moving)
    return {
        "shifts": out_dir / f"{s}.shifts.json",
        "stack": out_dir / (f"{s}.registered.ome.zarr" if stack_format == "zarr" else f"{s}.registered.tif"),
        "csv": out_dir / f"{s}.blocks.csv",
        "qc": out_dir / f"{s}.qc.png",
    }


def register_files(
    reference: str | Path,
    moving: str | Path,
    out_dir: str | Path,
    params: Params | None = None,
    *,
    voxel_size=None,
    use_blocks: bool = True,
    write_stack_file: bool = True,
    write_qc: bool = True,
    stack_format: str = "tif",
    progress: ProgressFn | None = None,
) -> tuple[Registration, list[Path]]:
    """Register ``moving`` onto ``reference`` (TIFF paths) and write the outputs to ``out_dir``.

    Writes ``<stem>.shifts.json``, ``<stem>.blocks.csv``, ``<stem>.registered.tif``
    (or ``.registered.ome.zarr`` with ``stack_format="zarr"``) and ``<stem>.qc.png``.
    Inputs may be TIFF files or (OME-)Zarr stores; both are read lazily. Inputs are
    read, never written: an output path that is an input is refused.
    """
    params = params or Params()
    out_dir = Path(out_dir)
    reference, moving = Path(reference), Path(moving)
    if stack_format not in ("tif", "zarr"):
        raise FidregError(f"stack_format must be 'tif' or 'zarr', got {stack_format!r}")
    paths = output_paths(out_dir, moving, stack_format)
    inputs = {reference.resolve(), moving.resolve()}
    for p in paths.values():
        if p.resolve() in inputs:
            raise FidregError(f"output {p} would overwrite an input; choose another --out")
    progress = progress or (lambda *a: None)
    # Memory-mapped where the file allows: no copy, pages read where the work looks.
    ref = read_stack(reference, lazy=True)
    mov = read_stack(moving, lazy=True)
    vs = voxel_size or ref.voxel_size or mov.voxel_size
    gen = iter_register(
        ref.data, mov.data, params, voxel_size=vs, reference_name=str(reference), moving_name=str(moving)
    )
    reg = drain(gen, lambda p: progress(f"{mov.name}: {p.stage}", p.done, p.total))
    # The CSV is written for global-only runs too (header only) so batch scripts can rely on it.
    written = [reg.save(paths["shifts"]), atomic_write_text(paths["csv"], reg.blocks_csv())]

    def correct(out=None):
        gen = iter_warp(mov.data, reg, output_shape=ref.data.shape, use_blocks=use_blocks,
                        workers=params.workers, out=out)  # fmt: skip
        return drain(gen, lambda item: progress(f"{mov.name}: correcting", *item))

    if write_stack_file:
        # Warp plane by plane into a memory-mapped output: memory stays bounded however
        # large the stack, and the file appears only once complete.
        writer = zarr_writer if stack_format == "zarr" else stack_writer
        dtype = mov.data.dtype.newbyteorder("=")  # big-endian input, native output
        with writer(paths["stack"], ref.data.shape, dtype, voxel_size=vs) as out:
            correct(out)
        written.append(paths["stack"])
    if write_qc:
        # the QC reads the written stack back (lazily) rather than correcting twice
        corrected = read_stack(paths["stack"], lazy=True).data if write_stack_file else correct()
        written.append(
            write_qc_figure(
                paths["qc"], ref.data, mov.data, corrected, title=f"{mov.name} onto {ref.name}", voxel_size=vs
            )
        )
    return reg, written
