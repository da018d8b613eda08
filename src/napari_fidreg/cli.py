"""``fidreg``: batch registration from the command line (thin over ``napari_fidreg.core``).

Exit status: 0 on success, 2 on bad input (one line on stderr naming the
problem), 1 when some of several moving stacks failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ._blas import one_blas_thread

# before the imports below load numpy and scipy, and with them OpenBLAS (see _blas);
# `--cluster local:N` workers inherit the setting
one_blas_thread()

from . import __version__  # noqa: E402
from ._logs import quiet_file_libraries  # noqa: E402
from .core.errors import FidregError  # noqa: E402
from .core.params import DEFAULT_WORKERS, MIN_BLOCK_YX, MIN_BLOCK_Z, NAMES, Params, parse_subvolume  # noqa: E402
from .core.progress import Progress  # noqa: E402


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"fidreg: error: {message}\n")


def _triple(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated numbers z,y,x") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not three comma-separated numbers z,y,x")
    return values  # type: ignore[return-value]


def _subvolume(text: str):
    try:
        return parse_subvolume(text)
    except FidregError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="fidreg", description="Register 3D fiducial stacks (normalized 3D cross-correlation)."
    )
    parser.add_argument("--version", action="version", version=f"napari-fidreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    reg = sub.add_parser(
        "register",
        help="register moving stacks onto a reference; write shifts, corrected stacks, QC, a drift table",
        usage="fidreg register REFERENCE MOVING [MOVING ...] --out DIR [options]\n"
        "       fidreg register --reference-round ROUND FIELD_FOLDER [FIELD_FOLDER ...] --out DIR [options]",
    )
    reg.add_argument(
        "inputs",
        nargs="+",
        metavar="STACK_OR_FOLDER",
        help="the reference stack then the moving stacks (TIFF/Zarr files, folders, glob patterns); "
        "with --reference-round, one folder per field of view",
    )
    reg.add_argument("--out", type=Path, required=True, help="output folder")
    reg.add_argument(
        "--reference-round",
        metavar="ROUND",
        help="whole experiment: each folder is a field, registered onto its stack whose name holds ROUND "
        "as a word (e.g. H11R11); results in --out/<folder name>/",
    )
    reg.add_argument(
        "--pattern", metavar="GLOB", help="in folders, take only the files whose name matches GLOB (e.g. '*_beads.tif')"
    )
    reg.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep complete result sets of an earlier run with the same reference and parameters (resume a batch)",
    )
    _add_registration_options(reg)
    reg.add_argument(
        "--voxel-size", type=_triple, default=None, metavar="Z,Y,X", help="voxel size in µm (default: from the file)"
    )
    reg.add_argument(
        "--global-only-correction",
        action="store_true",
        help="correct with the global shift even when blocks were measured",
    )
    reg.add_argument("--no-qc", action="store_true", help="skip the QC figures (per stack and drift.png)")
    reg.add_argument("--no-stack", action="store_true", help="skip writing the corrected stack")
    reg.add_argument("--ome-zarr", action="store_true", help="write the corrected stack as OME-Zarr instead of TIFF")
    reg.add_argument(
        "--series",
        type=int,
        default=None,
        metavar="N",
        help="image series of multi-series (OME-)TIFFs (default: the first, with a warning)",
    )
    reg.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    where = reg.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on an existing dask.distributed cluster")
    where.add_argument("--cluster", metavar="local:N", help="start a dask LocalCluster with N worker processes")

    app = sub.add_parser(
        "apply",
        help="apply saved registrations to other channels' stacks and to localization tables",
        usage="fidreg apply SHIFTS.json FILE [FILE ...] --out OUT [options]\n"
        "       fidreg apply RESULTS_FOLDER FILE [FILE ...] --out DIR [options]",
    )
    app.add_argument(
        "shifts",
        type=Path,
        help="a .shifts.json written by 'fidreg register' or the napari plugin, or a register --out folder "
        "(each file then gets its round's registration, matched by name)",
    )
    app.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="stacks (TIFF/Zarr; a hyperstack of channels: every channel) or localization tables (.csv/.tsv)",
    )
    app.add_argument(
        "--out", type=Path, required=True,
        help="output folder (<name>.registered.tif / .registered.csv), or the output file for a single FILE",
    )  # fmt: skip
    app.add_argument("--global-only", action="store_true", help="use the global shift, not the block field")
    app.add_argument(
        "--match", metavar="REGEX", default=None,
        help="with a results folder: the round's key in file names (first group, or whole match), e.g. 'H\\d+R\\d+'",
    )  # fmt: skip
    app.add_argument(
        "--columns", default="z,y,x", metavar="Z,Y,X", help="coordinate columns of tables (default %(default)s)"
    )
    app.add_argument(
        "--units", choices=("px", "um"), default="px", help="units of the table's coordinates (default px)"
    )
    app.add_argument(
        "--voxel-size", type=_triple, default=None, metavar="Z,Y,X",
        help="µm per voxel, for tables in µm (default: from the registration)",
    )  # fmt: skip
    app.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    demo = sub.add_parser("demo", help="register the built-in synthetic pair and compare with its known shift")
    demo.add_argument("--out", type=Path, default=Path("fidreg-demo"), help="output folder (default ./fidreg-demo)")
    demo.add_argument("--size", type=int, default=512, help="y/x size of the synthetic stacks (default 512)")
    demo.add_argument("--quiet", "-q", action="store_true")

    comp = sub.add_parser(
        "compile",
        help="compile the engine's kernels now for every common dtype (once after installing: ~30 s), "
        "so that no later run waits for them",
    )
    comp.add_argument("--quiet", "-q", action="store_true", help="only the last line")
    return parser


# Every parameter of the algorithm, with its help; defaults come from Params.
_PARAM_HELP = {
    "block_size": ("N", f"y/x block size for local shifts, at least {MIN_BLOCK_YX} (default: global only)"),
    "block_size_z": ("N", f"block depth in planes, at least {MIN_BLOCK_Z} (default: whole depth)"),
    "hot_pixels": (None, "do not remove camera hot pixels"),
    "hot_pixel_threshold": ("K", "robust SDs above the 3x3 median that make a pixel hot (default %(default)s)"),
    "background": (None, "do not subtract the background"),
    "background_sigma": ("PX", "background scale, larger than a fiducial (default %(default)s)"),
    "z_taper": ("F", "Tukey window fraction along z, in [0, 1] (default %(default)s)"),
    "yx_taper": ("F", "Tukey window fraction along y/x, in [0, 1] (default %(default)s)"),
    "max_shift": ("DZ,DY,DX", "largest global shift searched, px (default: a third of the depth, a quarter of y/x)"),
    "max_local_shift": ("PX", "largest block departure from the global shift, px (default %(default)s)"),
    "refine_blocks": (
        None,
        "refine every block shift like the global one (~2x more precise blocks on real stacks; "
        "the block stage takes ~2.4x as long)",
    ),
    "min_score": ("S", "reject blocks whose correlation peak is below this (default %(default)s)"),
    "min_sharpness": ("S", "reject blocks whose peak-to-sidelobe ratio is below this (default %(default)s)"),
    "outlier_mad": ("K", "reject blocks this many robust SDs from the consensus (default %(default)s)"),
    "outlier_floor": ("PX", "departures below this are never outliers (default %(default)s)"),
    "n_global_blocks": ("N", "richest blocks that refine the global shift (default %(default)s)"),
}


def _add_registration_options(p: argparse.ArgumentParser) -> None:
    defaults = Params()
    for name in NAMES:
        metavar, text = _PARAM_HELP[name]
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            if default:
                p.add_argument(f"--no-{name.replace('_', '-')}", dest=name, action="store_false", help=text)
            else:
                p.add_argument(flag, dest=name, action="store_true", help=text)
            continue
        kind = {"block_size": int, "block_size_z": int, "n_global_blocks": int, "max_shift": _triple}.get(name, float)
        p.add_argument(flag, dest=name, type=kind, default=default, metavar=metavar, help=text)
    p.add_argument(
        "--subvolume",
        type=_subvolume,
        default=None,
        metavar="z0:z1,y0:y1,x0:x1",
        help="restrict the computation to this region of the reference (half-open pixel ranges)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"threads per registration (default {DEFAULT_WORKERS}; 1 for a batch of small stacks, "
        "which then run side by side, one per core)",
    )


def params_from_args(args: argparse.Namespace) -> Params:
    return Params(**{name: getattr(args, name) for name in NAMES})


def _write(stream, text: str) -> None:
    """``text`` on ``stream`` (stdout or stderr), flushed. When its reader has gone
    (``fidreg ... | head -1``) the job goes on and its exit status stands: the stream
    is pointed at the null device and the rest of what it would have said is dropped."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _to_null(stream)


def _to_null(stream) -> None:
    """Point ``stream``'s file at the null device (its reader has gone)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _say(text: str) -> None:
    """A result line on stdout."""
    _write(sys.stdout, text + "\n")


def _tell(text: str) -> None:
    """Progress, warnings and errors on stderr."""
    _write(sys.stderr, text)


class Reporter:
    """Progress on stderr: a redrawn line on a terminal; otherwise (a log file, a batch
    system) one line per stack and stage, however the ticks of parallel stacks interleave.

    On a terminal the line starts with the batch's count (``[3/19]``) and shows the stack
    that ticked last (stacks run side by side take turns); :meth:`clear` wipes it before a
    result line is printed, so that results never run into it.
    """

    COUNT = "stacks registered"

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._said: set[str] = set()
        self._count = ""
        self._drawn = False

    def __call__(self, tick: Progress) -> None:
        if self.quiet:
            return
        if tick.stage == self.COUNT:
            self._count = f"[{tick.done}/{tick.total}] "
            if not self.tty:  # done, not "registered": a stack that failed counts too (the last line says)
                _tell(f"{tick.done} of {tick.total} stacks done\n")
            return
        label = tick.label
        if self.tty:
            width = 30
            filled = int(width * tick.done / max(tick.total, 1))
            # \033[K clears what a longer earlier line left (a "5/5" over "1/19" read "5/59")
            text = f"{self._count}{label:<40.40} [{'#' * filled}{'.' * (width - filled)}] {tick.done}/{tick.total}"
            _tell(f"\r{text}\033[K")
            self._drawn = True
        elif label not in self._said:
            _tell(f"{label} ...\n")
            self._said.add(label)

    def clear(self) -> None:
        """Wipe the progress line (on a terminal) before something else is printed."""
        if self._drawn:
            _tell("\r\033[K")
            self._drawn = False

    def info(self, text: str) -> None:
        if not self.quiet:
            self.clear()
            _tell(text + "\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or ``kill``'s stop): unwinds like Ctrl-C, so that every
    temporary file is removed and no partial output is left at a final name."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    quiet_file_libraries()  # what a damaged file makes them say on the side: the error line says it better
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    try:
        if args.command == "register":
            return _cmd_register(args)
        if args.command == "apply":
            return _cmd_apply(args)
        if args.command == "compile":
            return _cmd_compile(args)
        return _cmd_demo(args)
    except BrokenPipeError:  # `fidreg ... | head`: the reader has seen enough
        _to_null(sys.stdout)
        return 0
    except (FidregError, MemoryError, OSError) as exc:
        _tell(f"fidreg: error: {_one_line(exc)}\n")
        return 2
    except Terminated:
        _tell("fidreg: terminated (SIGTERM): no partial output was left\n")
        return 143
    except KeyboardInterrupt:
        _tell("fidreg: interrupted: no partial output was left\n")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    """The message of an error the user can act on, in one line."""
    if isinstance(exc, MemoryError):
        return "out of memory (try --subvolume or a smaller --block-size)"
    if isinstance(exc, OSError) and not isinstance(exc, FidregError):
        return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    return str(exc)


def _cmd_register(args) -> int:
    from . import preflight
    from .experiment import find_fields, one_field, run_fields

    params = params_from_args(args)
    report = Reporter(args.quiet)
    compiled_before = _compiled_so_far()
    if args.workers is not None and args.workers < 1:
        raise FidregError(f"--workers must be at least 1, got {args.workers}")
    if args.cluster is not None:
        preflight.parse_cluster(args.cluster)
    preflight.check_out_dir(args.out)
    if args.reference_round:
        fields = find_fields(args.inputs, args.reference_round, args.out, pattern=args.pattern)
        report.info(
            f"{len(fields)} field(s), {sum(len(f.movings) for f in fields)} moving stacks: "
            + ", ".join(f"{f.name} ({f.reference.name} + {len(f.movings)})" for f in fields[:4])
            + (" ..." if len(fields) > 4 else "")
        )
    else:
        if len(args.inputs) < 2:
            raise FidregError("give the reference stack and at least one moving stack (or --reference-round)")
        field, skipped = one_field(Path(args.inputs[0]), args.inputs[1:], args.out, pattern=args.pattern)
        fields = [field]
        if skipped:
            report.info(f"skipped {len(skipped)} result file(s) of an earlier run: {', '.join(p.name for p in skipped[:3])}"
                        + (" ..." if len(skipped) > 3 else ""))  # fmt: skip
    for f in fields:
        preflight.check_params_fit(f.reference, f.movings, params, args.subvolume)
    options = dict(
        series=args.series,
        subvolume=args.subvolume,
        workers=args.workers,
        voxel_size=args.voxel_size,
        use_blocks=not args.global_only_correction,
        write_stack_file=not args.no_stack,
        write_qc=not args.no_qc,
        stack_format="zarr" if args.ome_zarr else "tif",
    )
    total = sum(len(f.movings) for f in fields)
    failures, kept = [0], [0]

    def said(field, outcome) -> None:  # a summary line as each stack finishes
        report.clear()
        prefix = f"[{field.name}] " if len(fields) > 1 else ""
        if outcome.ok:
            kept[0] += outcome.kept
            text = outcome.registration.summary()
            _say(prefix + (text + "  (kept from an earlier run)" if outcome.kept else text))
            if total == 1:
                _say(f"  wrote {', '.join(outcome.outputs)}")
        else:
            failures[0] += 1
            named = outcome.error.startswith((str(outcome.moving), str(field.reference)))  # names its file
            err = outcome.error if named else f"{outcome.moving}: {outcome.error}"
            _tell(f"fidreg: error: {prefix}{err}\n")

    run_fields(
        fields, params, scheduler=args.scheduler or args.cluster, options=options,
        progress=report, on_outcome=said, skip_existing=args.skip_existing, plots=not args.no_qc,
    )  # fmt: skip
    report.clear()
    if total > 1:
        with_table = [f for f in fields if len(f.movings) > 1]
        where = ", ".join(str(f.out_dir / "drift.csv") for f in with_table[:3]) + (
            " ..." if len(with_table) > 3 else ""
        )
        extra = f" ({kept[0]} kept from an earlier run)" if kept[0] else ""
        tables = f"; drift table {where}" if with_table else ""
        _say(f"{total - failures[0]} of {total} stacks registered{extra}; outputs in {args.out}{tables}")
    _note_compiled(report, compiled_before)
    if failures[0]:
        return 2 if total == 1 else 1  # one stack: its bad input; several: some failed
    return 0


def _cmd_apply(args) -> int:
    from .applying import Match, apply_to_file, load_round_results, match_rounds, output_paths
    from .core.result import Registration

    if args.shifts.is_dir():
        rounds, reference = load_round_results(args.shifts)
        matches = match_rounds(args.files, rounds, reference, pattern=args.match)
    else:
        matches = [Match(f, args.shifts, "") for f in args.files]
    columns = tuple(c.strip() for c in args.columns.split(","))
    if len(columns) != 3 or not all(columns):
        raise FidregError(f"--columns {args.columns!r}: expected three column names z,y,x")
    targets = output_paths(matches, args.out)
    report = Reporter(args.quiet)
    compiled_before = _compiled_so_far()
    loaded: dict[Path, Registration] = {}
    for m, target in zip(matches, targets):
        reg = None
        if m.shifts is not None:
            reg = loaded[m.shifts] = loaded.get(m.shifts) or Registration.load(m.shifts)
        apply_to_file(
            m.path, target, reg, columns=columns, units=args.units, voxel_size=args.voxel_size,
            use_blocks=not args.global_only, progress=report,
            warn=lambda text: _tell(f"fidreg: warning: {text}\n"),
        )  # fmt: skip
        note = (
            ""
            if not m.round
            else f" (round {m.round})"
            if reg is not None
            else f" (reference round {m.round}: unchanged)"
        )
        _say(f"wrote {target}{note}")
    _note_compiled(report, compiled_before)
    return 0


def _compiled_so_far() -> int:
    """How many kernel signatures this process has compiled (not found in numba's cache)."""
    kernels = sys.modules.get("napari_fidreg.core.kernels")
    if kernels is None:  # no kernel has run in this process (a dask cluster's workers compile in theirs)
        return 0
    return sum(sum(k.stats.cache_misses.values()) for k in kernels.dispatchers())


def _note_compiled(report: Reporter, before: int) -> None:
    """A line on stderr when this command compiled kernels (the first run after installing, or
    the first on a new dtype, seconds slower than the next): why, and what does it up front."""
    compiled = _compiled_so_far() - before
    if compiled:
        report.info(
            f"note: this run compiled {compiled} of the engine's kernel signatures, which numba caches "
            "for the next run (a note at every run: its cache folder is not writable, see NUMBA_CACHE_DIR); "
            "`fidreg compile` compiles them for every common dtype up front"
        )


def _cmd_demo(args) -> int:
    from .demo import run_demo

    if args.size < 128:
        raise FidregError(f"--size must be at least 128, got {args.size}")
    return run_demo(args.out, args.size, Reporter(args.quiet))


def _cmd_compile(args) -> int:
    from .core import kernels
    from .core.precompile import DTYPES, compile_kernels

    def said(dtype: str, seconds: float) -> None:
        if not args.quiet:
            _tell(f"{dtype}: {seconds:.1f} s\n")

    t0 = time.perf_counter()
    compile_kernels(on_dtype=said)
    compiled = sum(sum(k.stats.cache_misses.values()) for k in kernels.dispatchers())
    where = kernels.bin_planes.stats.cache_path
    done = f"compiled {compiled} kernel signatures" if compiled else "every kernel signature was in the cache already"
    _say(f"{done} for {', '.join(DTYPES)} in {time.perf_counter() - t0:.1f} s (numba's cache: {where})")
    return 0


def run() -> NoReturn:
    """The ``fidreg`` command (and ``python -m napari_fidreg.cli``): :func:`main`, then exit.

    When :func:`main` returns, every output is written, renamed into place and closed;
    what is left is the interpreter's teardown, whose garbage collections walk every
    object numba, scipy and tifffile built (0.15-0.35 s of a fresh run: 0.04 s after
    ``gc.freeze()``, which takes them out of the collector's view). atexit handlers
    and the flushing of stdout and stderr still run. Not in :func:`main` itself: a
    process that calls it (a test, a notebook) lives on and collects as usual.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
