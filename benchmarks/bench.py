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

What users run (the first table, ``--users``): the CLI with its defaults (QC image and
corrected stack) as a fresh process on uncompressed and zlib-compressed 60x2048x2048 files,
against the prototype's global shift in this process and fidreg's own in-process
registration + correction; a 60x256x256 pair, fresh process, against the prototype's whole
job as a fresh process; a real batch (``--bintu FOV_DIR``: every round onto H11R11) per
stack against the library; and the napari click (``benchmarks/napari_click.py`` under
xvfb-run) at 1024².
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from napari_fidreg._blas import one_blas_thread

# The in-process rows run with one OpenBLAS thread, as the `fidreg` command does: asked for
# before numpy and scipy load theirs, then unset, so that the fresh processes below (the
# prototype's job, napari) keep their own defaults and `fidreg` makes its own choice.
_BLAS_SET = one_blas_thread()

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402, F401 - scipy's OpenBLAS, loaded now (numba would load it later)

if _BLAS_SET:
    del os.environ["OPENBLAS_NUM_THREADS"]

from _report import write_report  # noqa: E402
from napari_fidreg.core.io import read_stack  # noqa: E402
from napari_fidreg.core.params import Params  # noqa: E402
from napari_fidreg.core.register import register  # noqa: E402
from napari_fidreg.core.synthetic import fiducial_pair  # noqa: E402
from napari_fidreg.core.writers import write_stack  # noqa: E402
from napari_fidreg.pipeline import register_files  # noqa: E402

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


# The CLI runs as a child of a small spawner process, started with this one and kept for the
# run, which times it and reads its peak RSS from wait4. Spawning from this process would be
# wrong: subprocess forks with vfork, and a child's high-water mark then starts at this
# (multi-GiB, after the baselines) process's resident pages, kept across the exec. The
# spawner's own ~15 MB is the floor of every figure; timing there adds no interpreter start-up.
SPAWNER = r"""
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    cmd = json.loads(line)
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty child cannot block on it
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
    print(json.dumps([wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status), tail]), flush=True)
"""
_spawner: subprocess.Popen | None = None


def start_spawner() -> None:
    """Start the spawner while this process is still small (the top of :func:`main`)."""
    global _spawner
    if _spawner is None:
        _spawner = subprocess.Popen([sys.executable, "-c", SPAWNER], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip


def run_child(cmd: list[str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (GiB) of ``cmd`` run as a fresh process (by the spawner).

    Timed from the spawn to the child's exit, its peak read from ``wait4``.
    """
    start_spawner()
    _spawner.stdin.write(json.dumps([str(c) for c in cmd]) + "\n")
    _spawner.stdin.flush()
    wall, maxrss_kib, code, tail = json.loads(_spawner.stdout.readline())
    if code != 0:
        raise RuntimeError(f"{cmd[:4]}... exited with {code}: {tail}")
    return wall, maxrss_kib / 2**20  # KiB on Linux


def cli_peak_rss(ref: Path, mov: Path, out: Path) -> tuple[float, float]:
    """Wall time and peak RSS (GiB) of the full job as a fresh `fidreg register` process."""
    return run_child(fidreg_cmd(ref, mov, "--out", out, "--block-size", 256, "--no-qc"))


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


PROTOTYPE_JOB = """
import sys, numpy as np, tifffile
from scipy import ndimage
from skimage.registration import phase_cross_correlation
ref, mov, out = sys.argv[1:4]
r = tifffile.imread(ref).astype(np.float32); m = tifffile.imread(mov).astype(np.float32)
shift = phase_cross_correlation(r / r.max(), m / m.max(), upsample_factor=100)[0]
tifffile.imwrite(out, np.clip(np.rint(ndimage.shift(m, shift, order=1)), 0, 65535).astype(np.uint16))
"""


def fresh(cmd: list[str], repeats: int) -> tuple[list[float], float]:
    """Wall times of ``cmd`` as fresh processes and the largest peak RSS (GiB)."""
    runs = [run_child(cmd) for _ in range(repeats)]
    return [t for t, _ in runs], max(r for _, r in runs)


STARTUP = (
    ("start-up, fresh process: `python -c pass`", "pass"),
    ("start-up: `import napari_fidreg.cli` (what `fidreg --help` loads)", "import napari_fidreg.cli"),
    ("start-up: + the engine (`register`, `warp`: numpy, scipy.fft, numba, tifffile)",
     "import napari_fidreg.cli\nfrom napari_fidreg.core import register, warp"),
    ("start-up: + the first call of the compiled kernels (a 16×64² pair registered with 32² blocks and corrected)",
     "import napari_fidreg.cli\nimport numpy as np\nfrom napari_fidreg.core import register, warp\n"
     "rng = np.random.default_rng(0)\nref = rng.poisson(100, (16, 64, 64)).astype(np.uint16)\n"
     "warp(np.roll(ref, 2, 2), register(ref, np.roll(ref, 2, 2), block_size=32))"),
    ("start-up: the same, leaving as `fidreg` leaves (`gc.freeze()` first: a teardown without collections)",
     "import napari_fidreg.cli\nimport numpy as np\nfrom napari_fidreg.core import register, warp\n"
     "rng = np.random.default_rng(0)\nref = rng.poisson(100, (16, 64, 64)).astype(np.uint16)\n"
     "warp(np.roll(ref, 2, 2), register(ref, np.roll(ref, 2, 2), block_size=32))\nimport gc\ngc.freeze()"),
    ("start-up: matplotlib's Agg figure (the napari dock's figures only: the CLI draws its PNGs with Pillow)",
     "from matplotlib.figure import Figure\nfrom matplotlib.backends.backend_agg import FigureCanvasAgg"),
)  # fmt: skip


def startup_rows(repeats: int) -> list:
    """Fresh-process wall times of the start-up steps (each row includes the ones above it)."""
    rows = []
    for what, code in STARTUP:
        times, peak = fresh([sys.executable, "-c", code], max(repeats, 3))
        rows.append((what, times, peak, "", None))
    return rows


def fidreg_cmd(*args, command: str = "register") -> list[str]:
    """``fidreg register ARGS -q`` as users run it: the console script beside this
    interpreter (``python -m napari_fidreg.cli`` where it is not installed)."""
    script = Path(sys.executable).with_name("fidreg")
    launch = [str(script)] if script.is_file() else [sys.executable, "-m", "napari_fidreg.cli"]
    return [*launch, command, *map(str, args), "-q"]


def bench_users(args, rows: list) -> None:
    """The 'what users run' rows: (what, median s, min-max, peak GiB, against, ratio)."""
    data = make_data(2048, args.workdir)
    dref, dmov, _ = data["deformed"]
    zref, zmov = args.workdir / "deformed2048_ref.zlib.tif", args.workdir / "deformed2048_mov.zlib.tif"
    for src, dst in ((dref, zref), (dmov, zmov)):
        if not dst.exists():
            write_stack(dst, read_stack(src).data, compress=True)
    out = args.workdir / "users"
    ref, mov = read_stack(dref).data, read_stack(dmov).data

    from skimage.registration import phase_cross_correlation

    def prototype_global():
        r, m = ref.astype(np.float32), mov.astype(np.float32)
        return phase_cross_correlation(r / r.max(), m / m.max(), upsample_factor=100)[0]

    t_proto, mem_proto, _ = timed(prototype_global, args.baseline_repeats)
    register_files(dref, dmov, out / "warm", Params(block_size=256), write_qc=False)  # warm caches
    t_lib, mem_lib, _ = timed(
        lambda: register_files(dref, dmov, out / "lib", Params(block_size=256), write_qc=False), args.repeats
    )
    for label, (r, m) in (("uncompressed", (dref, dmov)), ("zlib-compressed", (zref, zmov))):
        t, rss = fresh(fidreg_cmd(r, m, "--out", out / label, "--block-size", 256), args.repeats)
        what = f"`fidreg register REF MOV --out D --block-size 256`, defaults, fresh process, 60×2048², {label}"
        rows.append((what, t, rss, "prototype's global shift alone (in process)", np.median(t_proto) / np.median(t)))
        rows.append(
            ("", t, rss, "fidreg's registration + correction in process (warm)", np.median(t) / np.median(t_lib))
        )
    rows.append(("prototype: global shift alone, PCC upsample 100, float32, in process, 60×2048²", t_proto,
                 mem_proto, "", None))  # fmt: skip
    rows.append(("fidreg registration + correction, TIFF to TIFF, in process (warm), 60×2048²", t_lib, mem_lib, "",
                 None))  # fmt: skip

    small = fiducial_pair((60, 256, 256), RIGID_SHIFT, seed=256)
    sref, smov = args.workdir / "small_ref.tif", args.workdir / "small_mov.tif"
    write_stack(sref, small.reference)
    write_stack(smov, small.moving)
    t_fid, rss_fid = fresh(fidreg_cmd(sref, smov, "--out", out / "small"), args.repeats)
    t_pro, rss_pro = fresh([sys.executable, "-c", PROTOTYPE_JOB, str(sref), str(smov), str(out / "p.tif")],
                           args.repeats)  # fmt: skip
    rows.append(("`fidreg register REF MOV --out D`, defaults, fresh process, 60×256²", t_fid, rss_fid,
                 "the prototype's job (read, PCC, shift, write) as a fresh process", np.median(t_pro) / np.median(t_fid)))  # fmt: skip
    rows.append(("prototype's job as a fresh process, 60×256²", t_pro, rss_pro, "", None))
    # the first run after installing: numba's cache empty (a folder of its own each time)
    caches = [args.workdir / f"numba-cache-{os.getpid()}-{k}" for k in range(args.repeats + 1)]
    first = [run_child(["env", f"NUMBA_CACHE_DIR={c}", *fidreg_cmd(sref, smov, "--out", out / "first")])
             for c in caches[1:]]  # fmt: skip
    rows.append(("the same, the first run after installing (numba's cache empty: it compiles the kernels)",
                 [t for t, _ in first], max(r for _, r in first), "the same with the kernels cached",
                 np.median(t_fid) / np.median([t for t, _ in first])))  # fmt: skip
    t_comp, rss_comp = run_child(["env", f"NUMBA_CACHE_DIR={caches[0]}", *fidreg_cmd(command="compile")])
    rows.append(("`fidreg compile` on an empty cache (what scripts/setup_env.sh runs once)", [t_comp], rss_comp,
                 "", None))  # fmt: skip
    for c in caches:
        shutil.rmtree(c, ignore_errors=True)

    if args.bintu is not None:
        fov = Path(args.bintu)
        stacks = sorted(p for p in fov.glob("H*R*_beads.tif") if p.name != "H11R11_beads.tif")
        runs, rss_cli = fresh(fidreg_cmd(fov / "H11R11_beads.tif", *stacks, "--out", out / "bintu"), args.repeats)
        per_cli = [t / len(stacks) for t in runs]  # the whole command (start-up included) per stack
        reference = read_stack(fov / "H11R11_beads.tif").data
        register(reference, read_stack(stacks[0]).data)  # warm
        lib = []
        for p in stacks:
            t1 = time.perf_counter()
            register(reference, read_stack(p).data)
            lib.append(time.perf_counter() - t1)
        rows.append((f"Bintu {fov.name}: {len(stacks)} rounds onto H11R11 through the CLI (zlib TIFFs as shipped), "
                     "per stack, defaults", per_cli, rss_cli, "the library's read + register per stack (warm)",
                     np.median(per_cli) / np.median(lib)))  # fmt: skip
        rows.append(("library: read + register per stack (warm)", lib, 0.0, "", None))

    rows += startup_rows(args.repeats)

    if args.napari:
        res = subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1600x1200x24", sys.executable,
             str(Path(__file__).with_name("napari_click.py")), "--size", "1024"],
            capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "xcb"},
        )  # fmt: skip
        line = [x for x in res.stdout.splitlines() if x.startswith("{")]
        if line:
            r = json.loads(line[-1])
            rows.append((f"napari, 60×1024²: click → result layers (first progress {r['first_progress_s']} s, "
                         f"longest stall {r['worst_stall_s']} s, Cancel {r['cancel_s']} s; the dock's opening "
                         f"{r['dock_open_s']} s, longest stall from it to the click {r['pick_s']} s later "
                         f"{r['dock_open_worst_stall_s']} s)", [r["click_to_layers_s"]], 0.0, "", None))  # fmt: skip


def render_users(rows) -> list[str]:
    lines = [
        "## What users run",
        "",
        "Defaults, fresh processes, files as written; ratios against baselines measured in the same run.",
        "",
        "| what | median s (min-max) | peak RSS GiB | compared with | ratio |",
        "|---|---|---|---|---|",
    ]
    for what, times, rss, against, ratio in rows:
        r = "" if ratio is None else f"{ratio:.2f}×"
        mem = f"{rss:.2f}" if rss else ""
        lines.append(
            f"| {what} | {np.median(times):.2f} ({min(times):.2f}-{max(times):.2f}) | {mem} | {against} | {r} |"
        )
    return lines + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[512, 1024, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-repeats", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fidreg-bench"))
    ap.add_argument("--out", type=Path, default=None, help="markdown file to write (docs/benchmarks.md)")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--users", action="store_true", help="measure what users run first (see the module doc)")
    ap.add_argument(
        "--bintu", type=Path, default=None, help="a Bintu fov folder (../shared/data/bintu2018_beads_3d/fov1)"
    )
    ap.add_argument("--napari", action="store_true", help="with --users: the napari click at 1024² (needs xvfb-run)")
    args = ap.parse_args(argv)

    start_spawner()  # before this process holds any data
    user_rows: list = []
    if args.users:
        bench_users(args, user_rows)
        print("users done", file=sys.stderr, flush=True)
    rows, details = [], []
    for size in args.sizes:
        bench_size(size, args, rows, details)
        print(f"size {size} done", file=sys.stderr, flush=True)

    text = render(rows, details, args, user_rows)
    print(text)
    if args.out:
        write_report(args.out, text, NOTES_MARKER)  # keeps the hand-written analysis
    return 0


def render(rows, details, args, user_rows=()) -> str:
    lines = ["# Benchmarks", ""]
    if user_rows:
        lines += render_users(user_rows)
    lines += [
        "## The warm engine",
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
