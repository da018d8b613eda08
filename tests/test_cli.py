"""The fidreg command, run as a real subprocess on real TIFF files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import cached_pair, file_digest
from napari_fidreg._blas import THREAD_VARIABLES
from napari_fidreg.core import read_stack, write_stack


def fidreg(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "napari_fidreg.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("shift,seed", [((0.35, -0.42, 0.27), 11), ((4.6, -12.3, 14.8), 12)])
def test_register_512_pair_within_002_px(tmp_path, shift, seed):
    pair = cached_pair((60, 512, 512), shift, seed=seed)
    ref = write_stack(tmp_path / "ref.tif", pair.reference, voxel_size=(0.2, 0.15, 0.15))
    mov = write_stack(tmp_path / "H2R2_beads.tif", pair.moving, voxel_size=(0.2, 0.15, 0.15))
    digests = (file_digest(ref), file_digest(mov))
    out = tmp_path / "out"
    refine = ["--refine-blocks"] if seed == 12 else []
    res = fidreg("register", ref, mov, "--out", out, "--block-size", 256, *refine)
    assert res.returncode == 0, res.stderr
    d = json.loads((out / "H2R2_beads.shifts.json").read_text())
    assert d["parameters"]["refine_blocks"] is bool(refine)
    assert (d["reference"], d["moving"]) == ("ref", "H2R2_beads")  # names, and the files themselves
    assert (d["reference_file"], d["moving_file"]) == (str(ref.resolve()), str(mov.resolve()))
    err = np.abs(np.subtract(d["global_shift"], shift))
    assert err.max() <= 0.02, err
    assert len(d["blocks"]) == 4 and all({"origin", "size", "shift", "score", "inlier"} <= set(b) for b in d["blocks"])
    assert (out / "H2R2_beads.blocks.csv").read_text().count("\n") == 5
    corrected = read_stack(out / "H2R2_beads.registered.tif")
    assert corrected.data.shape == pair.reference.shape and corrected.data.dtype == np.uint16
    np.testing.assert_allclose(corrected.voxel_size, (0.2, 0.15, 0.15), rtol=1e-6)
    assert (out / "H2R2_beads.qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "shift (dz, dy, dx)" in res.stdout
    assert (file_digest(ref), file_digest(mov)) == digests  # inputs untouched
    assert not list(out.glob("*.part"))


def test_apply_to_another_channel(tmp_path, tiff_pair):
    ref, mov, pair = tiff_pair
    out = tmp_path / "o"
    assert fidreg("register", ref, mov, "--out", out, "--no-qc").returncode == 0
    other = write_stack(tmp_path / "round2_cy5.tif", pair.moving // 3)
    res = fidreg("apply", out / "round2.shifts.json", other, "--out", tmp_path / "cy5_registered.tif")
    assert res.returncode == 0, res.stderr
    a = read_stack(tmp_path / "cy5_registered.tif").data.astype(float)
    b = read_stack(out / "round2.registered.tif").data.astype(float)
    assert np.abs(a - b / 3).max() <= 1.01


def test_several_moving_stacks_and_progress_on_stderr(tmp_path, tiff_pair):
    ref, mov, pair = tiff_pair
    mov2 = write_stack(tmp_path / "round3.tif", pair.moving)
    res = fidreg("register", ref, mov, mov2, "--out", tmp_path / "o", "--no-qc", "--no-stack")
    assert res.returncode == 0, res.stderr
    assert "2 of 2 stacks done" in res.stderr and "2 of 2 stacks registered" in res.stdout
    assert (tmp_path / "o" / "round2.shifts.json").exists() and (tmp_path / "o" / "round3.shifts.json").exists()


def test_on_a_terminal_results_never_run_into_the_progress_line(tmp_path, tiff_pair):
    """stdout and stderr on one real pseudo-terminal, stacks run side by side (the default for
    small stacks): every line a user sees reads whole."""
    import os
    import pty
    import re

    ref, mov, pair = tiff_pair
    movs = [mov] + [write_stack(tmp_path / f"round{i}.tif", pair.moving) for i in (3, 4, 5)]
    main, sub = pty.openpty()
    cmd = [sys.executable, "-m", "napari_fidreg.cli", "register", ref, *movs, "--out", tmp_path / "o", "--no-stack"]
    proc = subprocess.Popen(list(map(str, cmd)), stdout=sub, stderr=sub, close_fds=True)
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the other end closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=300) == 0
    screen = b"".join(chunks).decode()
    # what a terminal shows of each line: the text after its last carriage return
    shown = [re.sub(r"\x1b\[K", "", line.split("\r")[-1]) for line in screen.replace("\r\n", "\n").split("\n")]
    results = [line for line in shown if "shift (dz, dy, dx)" in line]
    assert len(results) == 4
    assert all(re.match(r"round\d: shift \(dz, dy, dx\)", line) for line in results), results
    assert re.search(r"\[[123]/4\] round\d: ", screen)  # the batch's count leads the progress line
    assert shown[-2].startswith("4 of 4 stacks registered"), shown[-3:]


@pytest.mark.parametrize(
    "args,msg",
    [
        (["missing.tif"], "no such file"),
        (["--block-size", "0"], "block_size must be a positive integer"),
        (["--block-size", "8"], "a smaller block holds too little to correlate"),
        (["--block-size", "999"], "block size 999 is larger than the y extent 160"),
        (["--subvolume", "5:2,0:10,0:10"], "z range 5:2 is empty or inverted"),
        (["--subvolume", "nope"], "expected z0:z1,y0:y1,x0:x1"),
        (["--z-taper", "1.5"], "z_taper must be in [0, 1]"),
        (["--outlier-mad", "0"], "outlier_mad must be > 0"),
        (["--min-score", "nan"], "min_score must be a finite number"),
        (["--n-global-blocks", "0"], "n_global_blocks must be an integer >= 1"),
        (["--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, tiff_pair, args, msg):
    ref, mov, _ = tiff_pair
    if args[0] == "missing.tif":
        cmd = ["register", ref, tmp_path / "missing.tif", "--out", tmp_path / "o"]
    else:
        cmd = ["register", ref, mov, "--out", tmp_path / "o", *args]
    res = fidreg(*cmd)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fidreg: error:") and msg in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_corrupt_and_non_tiff_files(tmp_path, tiff_pair):
    ref, _, _ = tiff_pair
    bad = tmp_path / "notes.tif"
    bad.write_text("not an image")
    res = fidreg("register", ref, bad, "--out", tmp_path / "o")
    assert res.returncode == 2 and "not a TIFF file" in res.stderr and "Traceback" not in res.stderr
    flat = write_stack(tmp_path / "flat.tif", np.ones((1, 8, 8), np.uint16))
    res = fidreg("register", ref, flat, "--out", tmp_path / "o")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_output_may_not_overwrite_an_input(tmp_path, tiff_pair):
    ref, mov, _ = tiff_pair
    # a reference that happens to be named like the moving stack's output, in the output folder
    clash = mov.parent / "round2.registered.tif"
    clash.write_bytes(ref.read_bytes())
    before = file_digest(clash)
    res = fidreg("register", clash, mov, "--out", mov.parent)
    assert res.returncode == 2 and "would overwrite an input" in res.stderr
    assert file_digest(clash) == before


def test_demo_recovers_the_known_shift(tmp_path):
    res = fidreg("demo", "--out", tmp_path / "demo", "--size", 256)
    assert res.returncode == 0, res.stderr
    line = next(text for text in res.stdout.splitlines() if text.startswith("error"))
    errors = [float(v) for v in line.split("=")[1].strip(" ()px").split(",")]
    assert max(abs(e) for e in errors) <= 0.02
    assert (tmp_path / "demo" / "moving.qc.png").exists()


def test_every_algorithm_parameter_is_an_option_and_lands_in_the_json(tmp_path, tiff_pair):
    """Each Params field is reachable from the command line (with Params' own default) and is
    recorded in the result; the region and the threads are not parameters but are recorded
    (the region) or do not change the result (the threads)."""
    from napari_fidreg.core import Params

    ref, mov, _ = tiff_pair
    options = {
        "--min-sharpness": 9.5, "--n-global-blocks": 4, "--outlier-mad": 3.5, "--outlier-floor": 1.5,
        "--z-taper": 0.7, "--yx-taper": 0.3, "--hot-pixel-threshold": 7.0, "--max-local-shift": 4.0,
        "--background-sigma": 7.0, "--min-score": 0.02,
    }  # fmt: skip
    args = [a for kv in options.items() for a in map(str, kv)]
    res = fidreg("register", ref, mov, "--out", tmp_path / "o", "--no-qc", "--no-stack", "--subvolume",
                 "0:40,0:160,0:128", "--workers", "1", *args)  # fmt: skip
    assert res.returncode == 0, res.stderr
    d = json.loads((tmp_path / "o" / "round2.shifts.json").read_text())
    for flag, value in options.items():
        assert d["parameters"][flag[2:].replace("-", "_")] == value, flag
    assert set(d["parameters"]) == set(Params().to_dict())
    assert d["subvolume"] == [[0, 40], [0, 160], [0, 128]]
    help_text = fidreg("register", "--help").stdout
    for name in Params().to_dict():
        flag = name.replace("_", "-")
        assert f"--{flag}" in help_text or f"--no-{flag}" in help_text, name


def test_the_installed_command_exits_with_the_status_of_its_job(tmp_path, tiff_pair):
    # the console script (cli.run: main, then a frozen collector for a quick teardown),
    # not `python -m`: the status and every output must survive the quick exit
    from pathlib import Path

    ref, mov, _ = tiff_pair
    command = Path(sys.executable).with_name("fidreg")
    done = subprocess.run(
        [command, "register", ref, mov, "--out", tmp_path / "o", "-q"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "o" / "round2.shifts.json").read_text())["global_shift"]
    assert read_stack(tmp_path / "o" / "round2.registered.tif").data.shape == read_stack(ref).data.shape
    assert (tmp_path / "o" / "round2.qc.png").read_bytes()[-8:-4] == b"IEND"  # complete, not cut short
    bad = subprocess.run([command, "register", ref, tmp_path / "absent.tif", "--out", tmp_path / "p"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("fidreg: error:") and "absent.tif" in bad.stderr


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_reader_that_stops_reading_does_not_stop_the_batch_nor_hide_a_failure(tmp_path, tiff_pair, stream):
    # `fidreg register ... | head -1` (or `2>&1 | head -1`): the lines after the first meet a
    # closed pipe; every stack is still registered, and the status still says one failed
    ref, mov, pair = tiff_pair
    movs = [write_stack(tmp_path / f"round{i}.tif", pair.moving) for i in (3, 4, 5)]
    broken = tmp_path / "round6.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)  # a TIFF header and nothing readable
    cmd = [sys.executable, "-m", "napari_fidreg.cli", "register", ref, mov, *movs, broken, "--out", tmp_path / "o",
           "--no-stack", "--workers", "1"]  # fmt: skip
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL}
    if stream == "stderr":
        pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    with subprocess.Popen(list(map(str, cmd)), **pipes) as child:
        reader = getattr(child, stream)
        assert reader.readline()  # the first line, then the reader goes
        reader.close()
        code = child.wait(timeout=120)
    assert code == 1  # one of five failed
    assert sorted(p.name for p in (tmp_path / "o").glob("*.shifts.json")) == [
        f"round{i}.shifts.json" for i in (2, 3, 4, 5)
    ]
    assert (tmp_path / "o" / "drift.png").exists() and "round6" in (tmp_path / "o" / "drift.csv").read_text()


def test_an_os_error_without_a_file_name_reads_as_one_plain_line():
    from napari_fidreg.cli import _one_line

    assert _one_line(OSError(28, "No space left on device")) == "No space left on device"
    assert _one_line(FileNotFoundError(2, "No such file or directory", "a.tif")) == "No such file or directory (a.tif)"


def test_voxel_sizes_that_differ_between_the_files_are_warned_about(tmp_path):
    from napari_fidreg.core import Registration
    from napari_fidreg.pipeline import register_files

    pair = cached_pair((20, 96, 96), (0.5, 1.0, -2.0), seed=61)
    ref = write_stack(tmp_path / "ref.tif", pair.reference, voxel_size=(0.2, 0.15, 0.15))
    same = write_stack(tmp_path / "same.tif", pair.moving, voxel_size=(0.2, 0.1505, 0.15))  # within 1 %
    other = write_stack(tmp_path / "other.tif", pair.moving, voxel_size=(0.3, 0.1, 0.1))
    reg, _ = register_files(ref, same, tmp_path / "o", write_qc=False, write_stack_file=False)
    assert not any("voxel sizes differ" in w for w in reg.warnings)
    reg, _ = register_files(ref, other, tmp_path / "o", write_qc=False, write_stack_file=False)
    note = "the voxel sizes differ: reference (0.2, 0.15, 0.15) µm, moving (0.3, 0.1, 0.1) µm (z, y, x)"
    assert reg.voxel_size == (0.2, 0.15, 0.15) and any(w.startswith(note) for w in reg.warnings)
    saved = Registration.load(tmp_path / "o" / "other.shifts.json")
    assert any(w.startswith(note) for w in saved.warnings)
    # not when the user gave the voxel size (it is the one used), nor for a z step alone (a file
    # without one reads as 1.0)
    reg, _ = register_files(ref, other, tmp_path / "g", voxel_size=(0.2, 0.15, 0.15), write_qc=False,
                            write_stack_file=False)  # fmt: skip
    assert not any("voxel sizes differ" in w for w in reg.warnings)
    no_z = write_stack(tmp_path / "no_z.tif", pair.moving, voxel_size=(1.0, 0.15, 0.15))
    reg, _ = register_files(ref, no_z, tmp_path / "z", write_qc=False, write_stack_file=False)
    assert not any("voxel sizes differ" in w for w in reg.warnings)


def test_errors_name_the_file_they_are_about_and_the_out_folder_is_tried_first(tmp_path, tiff_pair):
    import tifffile

    ref, mov, pair = tiff_pair
    flags = tmp_path / "flags.tif"
    tifffile.imwrite(flags, pair.moving > 100)  # booleans
    const = write_stack(tmp_path / "const.tif", np.full((20, 64, 64), 100, np.uint16))

    def one_line(*args):
        res = fidreg(*args)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("fidreg: error:")]
        assert len(errors) == 1, res.stderr
        return errors[0]

    # before any work, one moving stack: named as such, not "moving: ... (for every moving stack)"
    line = one_line("register", ref, flags, "--out", tmp_path / "o")
    assert line == f"fidreg: error: {flags} (moving): unsupported data type bool (need integers or floats)"
    line = one_line("register", flags, mov, "--out", tmp_path / "o")
    assert line.startswith(f"fidreg: error: {flags} (reference): unsupported data type bool")
    # found while registering: the reference's file, not prefixed by the moving stack's
    line = one_line("register", const, mov, "--out", tmp_path / "o")
    assert line.startswith(f"fidreg: error: {const} (reference): image is constant"), line
    line = one_line("register", tmp_path, mov, "--out", tmp_path / "o")  # a folder for the reference
    assert line == f"fidreg: error: {tmp_path}: is a folder, neither a TIFF file nor a Zarr store"
    # an --out where no folder can be made is said before the registration, about --out
    line = one_line("register", ref, mov, "--out", "/proc/fidreg-test/out")
    assert line.startswith("fidreg: error: --out /proc/fidreg-test/out: cannot write into /proc: it takes no new"), line


def test_the_progress_count_says_done_a_failed_stack_included(tmp_path, tiff_pair):
    ref, mov, _ = tiff_pair
    broken = tmp_path / "broken.tif"
    broken.write_bytes(mov.read_bytes()[:3000])
    res = fidreg("register", ref, mov, broken, "--out", tmp_path / "o", "--no-qc", "--no-stack")
    assert res.returncode == 1
    assert "2 of 2 stacks done" in res.stderr and "2 of 2 stacks registered" not in res.stderr
    assert "1 of 2 stacks registered" in res.stdout


def test_compile_says_what_it_compiled_and_where_the_cache_is(capsys):
    from napari_fidreg.cli import main
    from napari_fidreg.core.precompile import DTYPES

    assert main(["compile", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # --quiet: no line per dtype
    line = out.strip()
    assert line.count("\n") == 0 and f"for {', '.join(DTYPES)} in " in line
    assert "numba's cache: " in line
    assert line.startswith(("compiled ", "every kernel signature was in the cache already"))


def test_a_run_that_compiles_says_so_once_and_names_fidreg_compile(tmp_path):
    pair = cached_pair((12, 64, 64), (1.0, -2.0, 3.0), seed=5)
    ref = write_stack(tmp_path / "ref.tif", pair.reference)
    mov = write_stack(tmp_path / "mov.tif", pair.moving)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}  # empty: a first run after installing
    cmd = [sys.executable, "-m", "napari_fidreg.cli", "register", str(ref), str(mov), "--no-qc", "--no-stack"]
    first, second = (
        subprocess.run([*cmd, "--out", str(tmp_path / out)], capture_output=True, text=True, env=env)
        for out in ("a", "b")
    )
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    note = [line for line in first.stderr.splitlines() if line.startswith("note: this run compiled ")]
    assert len(note) == 1 and "`fidreg compile`" in note[0], first.stderr
    assert "compiled" not in second.stderr, second.stderr  # loaded from the cache the first run filled
    assert (
        json.loads((tmp_path / "a" / "mov.shifts.json").read_text())["global_shift"]
        == json.loads((tmp_path / "b" / "mov.shifts.json").read_text())["global_shift"]
    )


def _threads_after_loading_the_engine(env: dict) -> int:
    count = (
        "import os, napari_fidreg.cli\n"
        "from napari_fidreg.core import kernels, register\n"
        "kernels.warm_up()\n"  # numba loads scipy's BLAS for its check
        "print(len(os.listdir('/proc/self/task')))"
    )
    out = subprocess.run([sys.executable, "-c", count], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout)


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task") or len(os.sched_getaffinity(0)) < 2,
    reason="counts threads in /proc (Linux); OpenBLAS starts no more than one thread per CPU",
)
def test_the_command_runs_no_blas_threads_unless_the_user_asks():
    """OpenBLAS (numpy's and scipy's) starts a thread per core when it loads, and they spin beside
    the engine's own threads; the command's process loads them with one, a user's choice kept."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    assert _threads_after_loading_the_engine(env) == 1  # the main thread alone
    for chosen in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        assert _threads_after_loading_the_engine({**env, chosen: "2"}) > 1, chosen
