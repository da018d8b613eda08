"""Speed, memory and accuracy of napari-fidreg against the prototype and a pyHiM-style baseline.

Everything runs in one process on the same synthetic data (60 x N x N uint16 fiducial pairs
with hot pixels, uneven background, noise, a known shift and, for blocks, a known smooth
deformation); ratios measured in one run are what count on a shared machine.

    .venv/bin/python benchmarks/bench.py --sizes 512 1024 2048 --repeats 3 --out docs/benchmarks.md

Methods
-------
prototype   skimage phase_cross_correlation(ref/ref.max(), mov/mov.max(), upsample_factor=100)
            on float32 whole volumes, then scipy.ndimage.shift (what the project grew from).
pyhim-like  phase_cross_correlation(upsample_factor=100) on every 128x128 full-depth block,
            after a whole-pixel pre-alignment by the true global shift (its best case).
fidreg global        napari_fidreg.core.register(ref, mov) on in-memory arrays.
fidreg blocks        the same with 256² blocks on the deformed pair, without and with refine_blocks.
fidreg full          TIFF -> TIFF: read, global + 256x256 block shifts, corrected stack written
                     (napari_fidreg.pipeline.register_files without the QC figure).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from _report import write_report
from napari_fidreg.core.io import read_stack
from napari_fidreg.core.params import Params
from napari_fidreg.core.register import register
from napari_fidreg.core.synthetic import fiducial_pair
from napari_fidreg.core.writers import write_stack
from napari_fidreg.pipeline import register_files

NOTES_MARKER = "<!-- analysis: kept when bench.py rewrites the tables above -->"
RIGID_SHIFT = (1.7, -6.3, 9.45)
DEFORMATION = (0.5, 1.5, 1.5)
PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample this process's resident memory every 5 ms while a block of code runs."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def extra_gib(self) -> float:
        return (self.peak - self.base) / 2**30


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def make_data(size: int, workdir: Path):
    """Rigid and deformed pairs on disk (cached), with their truth."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind in ("rigid", "deformed"):
        base = workdir / f"{kind}{size}"
        if not (base.with_suffix(".truth.pkl")).exists():
            pair = fiducial_pair(
                (60, size, size), RIGID_SHIFT, deformation=DEFORMATION if kind == "deformed" else None, seed=size
            )
            write_stack(f"{base}_ref.tif", pair.reference)
            write_stack(f"{base}_mov.tif", pair.moving)
            pair.reference = pair.moving = None
            with open(base.with_suffix(".truth.pkl"), "wb") as fh:
                pickle.dump(pair, fh)
        with open(base.with_suffix(".truth.pkl"), "rb") as fh:
            out[kind] = (Path(f"{base}_ref.tif"), Path(f"{base}_mov.tif"), pickle.load(fh))
    return out


def prototype(ref, mov):
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    r = ref.astype(np.float32)
    m = mov.astype(np.float32)
    shift, _, _ = phase_cross_correlation(r / r.max(), m / m.max(), upsample_factor=100)
    corrected = ndimage.shift(m, shift)
    return np.asarray(shift), corrected


def pyhim_like(ref, mov, block=128):
    """pyHiM aligns globally (2D) before its 3D block step: give the baseline its best case,
    the moving stack pre-aligned by the true global shift rounded to whole pixels."""
    from skimage.registration import phase_cross_correlation

    pre = np.rint(RIGID_SHIFT).astype(int)
    r = ref.astype(np.float32)
    m = np.roll(mov.astype(np.float32), tuple(pre), axis=(0, 1, 2))
    shifts = {}
    for y in range(0, r.shape[1] - block + 1, block):
        for x in range(0, r.shape[2] - block + 1, block):
            a = r[:, y : y + block, x : x + block]
            b = m[:, y : y + block, x : x + block]
            s, _, _ = phase_cross_correlation(a / a.max(), b / b.max(), upsample_factor=100)
            shifts[(y, x)] = s + pre
    return shifts


def block_rms(pair, items) -> tuple[np.ndarray, int]:
    """RMS error per axis over blocks that hold fiducials; items = [(origin, size, shift)]."""
    errs = []
    for origin, size, shift in items:
        truth = pair.block_truth(origin, size)
        if truth is not None:
            errs.append(np.subtract(shift, truth))
    errs = np.array(errs)
    return np.sqrt(np.mean(errs**2, axis=0)), len(errs)


def timed(fn, repeats):
    times, peaks, result = [], [], None
    for _ in range(repeats):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        peaks.append(mem.extra_gib)
    return times, max(peaks), result


# A small launcher runs the CLI and reports its child's peak RSS. Measuring from this
# process would be wrong: subprocess forks with vfork, and the child's high-water mark then
# includes this (multi-GiB) process's resident pages until the exec.
_LAUNCHER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def cli_peak_rss(ref: Path, mov: Path, out: Path) -> tuple[float, float]:
    """Wall time and peak RSS (GiB) of the full job as a fresh `fidreg register` process."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "napari_fidreg.cli", "register", str(ref),
         str(mov), "--out", str(out), "--block-size", "256", "--no-qc", "-q"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    return wall, int(res.stdout.split()[-1]) / 2**20


def stage_times(ref: Path, mov: Path, out: Path) -> dict[str, float]:
    """Where the full job's time goes, from its progress ticks."""
    marks: list[tuple[str, float]] = []

    def progress(tick):
        stage = tick.stage
        if not marks or marks[-1][0] != stage:
            marks.append((stage, time.perf_counter()))

    t0 = time.perf_counter()
    register_files(ref, mov, out, Params(block_size=256), write_qc=False, progress=progress)
    end = time.perf_counter()
    stages = {"read + scan + hot pixels + coarse": marks[1][1] - t0 if len(marks) > 1 else 0.0}
    for (name, t), nxt in zip(marks[1:], [m[1] for m in marks[2:]] + [end]):
        stages[name] = nxt - t
    stages["correcting + writing TIFF"] = stages.pop("correcting", 0.0)
    return stages


def bench_size(size: int, args, rows: list, details: list) -> None:
    """Run every method on the N x N data; append table rows and the full job's details."""
    data = make_data(size, args.workdir)
    rref, rmov, rpair = data["rigid"]
    dref, dmov, dpair = data["deformed"]
    ref, mov = read_stack(rref).data, read_stack(rmov).data
    dr, dm = read_stack(dref).data, read_stack(dmov).data
    truth = np.asarray(RIGID_SHIFT)
    out = args.workdir / f"out{size}"
    register(ref[:, :128, :128], mov[:, :128, :128])  # compile numba / warm caches once

    t, mem, reg = timed(lambda: register(ref, mov), args.repeats)
    fid_global = np.median(t)
    rows.append((size, "fidreg global (in memory)", t, mem, np.abs(np.subtract(reg.global_shift, truth)), None))

    for refine in (False, True):
        t, mem, reg_b = timed(lambda r=refine: register(dr, dm, block_size=256, refine_blocks=r), args.repeats)
        rms, nb = block_rms(dpair, [(b.origin, b.size, b.measured_shift) for b in reg_b.blocks if b.inlier])
        label = "fidreg global + 256² blocks" + (", refine_blocks" if refine else "") + " (in memory)"
        rows.append((size, label, t, mem, None, (rms, nb)))

    t, mem, (reg_full, _) = timed(
        lambda: register_files(dref, dmov, out, Params(block_size=256), write_qc=False), args.repeats
    )
    fid_full = np.median(t)
    rms, nb = block_rms(dpair, [(b.origin, b.size, b.measured_shift) for b in reg_full.blocks if b.inlier])
    rows.append((size, "fidreg global + 256² blocks + corrected stack, TIFF to TIFF", t, mem, None, (rms, nb)))
    cli_wall, cli_rss = cli_peak_rss(dref, dmov, out)
    details.append((size, cli_wall, cli_rss, stage_times(dref, dmov, out)))

    if not args.skip_baselines:
        t, mem, (shift, _) = timed(lambda: prototype(ref, mov), args.baseline_repeats)
        rows.append((size, "prototype: PCC upsample 100 whole volume + ndimage.shift", t, mem,
                     np.abs(shift - truth), None, fid_global))  # fmt: skip
        t, mem, shifts = timed(lambda: pyhim_like(dr, dm), args.baseline_repeats)
        rms_b, nbb = block_rms(dpair, [((0, y, x), (60, 128, 128), s) for (y, x), s in shifts.items()])
        rows.append((size, "pyHiM-like: PCC upsample 100 per 128² block", t, mem, None, (rms_b, nbb), fid_full))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fidreg-bench"))
    ap.add_argument("--out", type=Path, default=None, help="markdown file to write (docs/benchmarks.md)")
    ap.add_argument("--skip-baselines", action="store_true")
    args = ap.parse_args(argv)

    rows, details = [], []
    for size in args.sizes:
        bench_size(size, args, rows, details)
        print(f"size {size} done", file=sys.stderr, flush=True)

    text = render(rows, details, args)
    print(text)
    if args.out:
        write_report(args.out, text, NOTES_MARKER)  # keeps the hand-written analysis
    return 0


def render(rows, details, args) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, by `benchmarks/bench.py` "
        f"(median of {args.repeats} runs for napari-fidreg, {args.baseline_repeats} for the baselines, "
        "all in one process on the same data). Synthetic 60×N×N uint16 pairs: Gaussian beads, hot "
        f"pixels, uneven background, Poisson + read noise; global shift {RIGID_SHIFT}; a smooth "
        f"deformation of amplitude {DEFORMATION} px for the block methods.",
        "",
        "| N | method | median s (min-max) | extra peak RSS GiB | global error (dz, dy, dx) px | block RMS error (dz, dy, dx) px, blocks | fidreg speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        size, name, times, mem, gerr, berr = row[:6]
        ratio = f"{np.median(times) / row[6]:.1f}×" if len(row) > 6 else ""
        g = "" if gerr is None else "(" + ", ".join(f"{v:.3f}" for v in gerr) + ")"
        b = "" if berr is None else "(" + ", ".join(f"{v:.3f}" for v in berr[0]) + f"), {berr[1]}"
        lines.append(
            f"| {size} | {name} | {np.median(times):.2f} ({min(times):.2f}-{max(times):.2f}) | {mem:.2f} | {g} | {b} | {ratio} |"
        )
    lines += [
        "",
        "*fidreg speed-up* compares the prototype with fidreg's global registration and the pyHiM-like "
        "baseline with fidreg's full job (which does more: it also reads and writes TIFFs and corrects "
        "the stack). *Extra peak RSS* is the resident memory above what the process held before the run "
        "(sampled every 5 ms); the baselines' inputs are already in memory.",
        "",
        "## The full job as a fresh process",
        "",
        "| N | `fidreg register --block-size 256 --no-qc` wall s (incl. start-up) | peak RSS GiB | stages (s) |",
        "|---|---|---|---|",
    ]
    for size, wall, rss, stages in details:
        st = "; ".join(f"{k} {v:.2f}" for k, v in stages.items())
        lines.append(f"| {size} | {wall:.2f} | {rss:.2f} | {st} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
