"""``fidreg``: batch registration from the command line (thin over ``napari_fidreg.core``).

Exit status: 0 on success, 2 on bad input (one line on stderr naming the
problem), 1 when some of several moving stacks failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import __version__
from .core.errors import FidregError
from .core.params import NAMES, Params, parse_subvolume
from .core.progress import Progress
from .core.register import DEFAULT_WORKERS


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

    reg = sub.add_parser("register", help="register moving stacks onto a reference; write shifts, corrected stacks, QC")
    reg.add_argument("reference", type=Path, help="reference fiducial stack (TIFF)")
    reg.add_argument("moving", nargs="+", help="moving fiducial stacks: TIFF files, folders of TIFFs, or glob patterns")
    reg.add_argument("--out", type=Path, required=True, help="output folder")
    _add_registration_options(reg)
    reg.add_argument(
        "--voxel-size", type=_triple, default=None, metavar="Z,Y,X", help="voxel size in µm (default: from the file)"
    )
    reg.add_argument(
        "--global-only-correction",
        action="store_true",
        help="correct with the global shift even when blocks were measured",
    )
    reg.add_argument("--no-qc", action="store_true", help="skip the QC figure")
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

    app = sub.add_parser("apply", help="apply a saved registration to another stack (e.g. another channel)")
    app.add_argument("shifts", type=Path, help="a .shifts.json written by 'fidreg register' or the napari plugin")
    app.add_argument("image", type=Path, help="stack to correct (TIFF)")
    app.add_argument("--out", type=Path, required=True, help="output TIFF")
    app.add_argument("--global-only", action="store_true", help="use the global shift, not the block field")
    app.add_argument("--quiet", "-q", action="store_true")

    demo = sub.add_parser("demo", help="register the built-in synthetic pair and compare with its known shift")
    demo.add_argument("--out", type=Path, default=Path("fidreg-demo"), help="output folder (default ./fidreg-demo)")
    demo.add_argument("--size", type=int, default=512, help="y/x size of the synthetic stacks (default 512)")
    demo.add_argument("--quiet", "-q", action="store_true")
    return parser


# Every parameter of the algorithm, with its help; defaults come from Params.
_PARAM_HELP = {
    "block_size": ("N", "y/x block size for local shifts (default: global only)"),
    "block_size_z": ("N", "block depth in planes (default: whole depth)"),
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
        "--workers", type=int, default=DEFAULT_WORKERS, help="threads per registration (default %(default)s)"
    )


def params_from_args(args: argparse.Namespace) -> Params:
    return Params(**{name: getattr(args, name) for name in NAMES})


class Reporter:
    """Progress on stderr: a redrawn line on a terminal, a line per stage otherwise."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._last = ""

    def __call__(self, tick: Progress) -> None:
        if self.quiet:
            return
        label = tick.label
        if self.tty:
            width = 30
            filled = int(width * tick.done / max(tick.total, 1))
            sys.stderr.write(f"\r{label:<40.40} [{'#' * filled}{'.' * (width - filled)}] {tick.done}/{tick.total}")
            if tick.finished:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif label != self._last:
            sys.stderr.write(f"{label} ...\n")
            self._last = label

    def info(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or ``kill``'s stop): unwinds like Ctrl-C, so that every
    temporary file is removed and no partial output is left at a final name."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    # What a damaged file makes the libraries say on the side: the one error line says it better.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    try:
        if args.command == "register":
            return _cmd_register(args)
        if args.command == "apply":
            return _cmd_apply(args)
        return _cmd_demo(args)
    except BrokenPipeError:  # `fidreg ... | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (FidregError, MemoryError, OSError) as exc:
        sys.stderr.write(f"fidreg: error: {_one_line(exc)}\n")
        return 2
    except Terminated:
        sys.stderr.write("fidreg: terminated (SIGTERM): no partial output was left\n")
        return 143
    except KeyboardInterrupt:
        sys.stderr.write("fidreg: interrupted: no partial output was left\n")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    """The message of an error the user can act on, in one line."""
    if isinstance(exc, MemoryError):
        return "out of memory (try --subvolume or a smaller --block-size)"
    if isinstance(exc, OSError) and not isinstance(exc, FidregError):
        return f"{exc.strerror or exc} ({exc.filename or ''})"
    return str(exc)


def _cmd_register(args) -> int:
    from . import preflight
    from .batch import expand_moving, run_batch
    from .pipeline import register_files

    params = params_from_args(args)
    report = Reporter(args.quiet)
    if args.workers < 1:
        raise FidregError(f"--workers must be at least 1, got {args.workers}")
    if args.cluster is not None:
        preflight.parse_cluster(args.cluster)
    preflight.check_out_dir(args.out)
    movings, skipped = expand_moving(args.moving, args.reference)
    if skipped:
        report.info(f"skipped {len(skipped)} result file(s) of an earlier run: {', '.join(p.name for p in skipped[:3])}"
                    + (" ..." if len(skipped) > 3 else ""))  # fmt: skip
    preflight.check_params_fit(args.reference, movings, params, args.subvolume)
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
    scheduler = args.scheduler or args.cluster
    if len(movings) == 1 and scheduler is None:
        # one stack: run here, with a progress bar per stage
        reg, outputs = register_files(args.reference, movings[0], args.out, params, progress=report, **options)
        _print_summary(reg, outputs)
        return 0
    outcomes = run_batch(
        args.reference, movings, args.out, params, scheduler=scheduler, options=options, progress=report
    )
    failures = 0
    for o in outcomes:
        if o.ok:
            print(o.registration.summary())
        else:
            failures += 1
            said = o.error if o.error.startswith(str(o.moving)) else f"{o.moving}: {o.error}"
            sys.stderr.write(f"fidreg: error: {said}\n")
    print(f"{len(outcomes) - failures} of {len(outcomes)} stacks registered; outputs in {args.out}")
    return 1 if failures else 0


def _print_summary(reg, outputs) -> None:
    print(reg.summary())
    print(f"  wrote {', '.join(str(p) for p in outputs)}")


def _cmd_apply(args) -> int:
    from . import preflight
    from .core.io import read_stack
    from .core.progress import drain
    from .core.result import Registration
    from .core.warp import iter_warp
    from .core.writers import write_stack

    preflight.check_output_file(args.out, [args.shifts, args.image])
    reg = Registration.load(args.shifts)
    stack = read_stack(args.image)
    if stack.data.shape != tuple(reg.moving_shape):
        sys.stderr.write(
            f"fidreg: warning: {args.image} has shape {stack.data.shape}, the registered stack had {tuple(reg.moving_shape)}\n"
        )
    report = Reporter(args.quiet)
    gen = iter_warp(stack.data, reg, output_shape=stack.data.shape, use_blocks=not args.global_only)
    out = drain(gen, report)
    write_stack(args.out, out[0] if stack.ndim == 2 else out, voxel_size=stack.voxel_size or reg.voxel_size)
    print(f"wrote {args.out}")
    return 0


def _cmd_demo(args) -> int:
    from .core.synthetic import fiducial_pair
    from .core.writers import write_stack
    from .pipeline import register_files

    if args.size < 128:
        raise FidregError(f"--size must be at least 128, got {args.size}")
    truth = (1.3, -4.6, 7.25)
    report = Reporter(args.quiet)
    report.info(f"generating a synthetic fiducial pair, 60 x {args.size} x {args.size}, true shift {truth}")
    pair = fiducial_pair((60, args.size, args.size), truth, seed=7)
    out = args.out
    voxel = (0.2, 0.15, 0.15)
    ref_path = write_stack(out / "reference.tif", pair.reference, voxel_size=voxel)
    mov_path = write_stack(out / "moving.tif", pair.moving, voxel_size=voxel)
    t0 = time.perf_counter()
    reg, outputs = register_files(ref_path, mov_path, out, Params(block_size=128), progress=report)
    elapsed = time.perf_counter() - t0
    _print_summary(reg, outputs)
    errs = []
    for b in reg.blocks:
        t = pair.block_truth(b.origin, b.size)
        if t is not None and b.inlier:
            errs.append(np.subtract(b.measured_shift, t))
    rms = np.sqrt(np.mean(np.square(errs), axis=0)) if errs else np.full(3, np.nan)
    print(f"true global shift      (dz, dy, dx) = {truth}")
    print(f"recovered global shift (dz, dy, dx) = ({', '.join(f'{v:+.3f}' for v in reg.global_shift)})")
    err = np.subtract(reg.global_shift, truth)
    print(f"error                  (dz, dy, dx) = ({', '.join(f'{v:+.3f}' for v in err)}) px")
    print(
        f"block shifts vs truth: RMS error (dz, dy, dx) = ({', '.join(f'{v:.3f}' for v in rms)}) px over {len(errs)} blocks"
    )
    print(f"registered and corrected in {elapsed:.1f} s; open {out / 'moving.qc.png'} to check by eye")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
