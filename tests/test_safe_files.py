"""No lost byte, no crash: inputs stay byte-identical, bad files and options end in one line,
an interrupted or failed run leaves no partial file at a final name. Real TIFF files, the
real ``fidreg`` command in a subprocess."""

from __future__ import annotations

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from conftest import cached_pair, file_digest
from napari_fidreg.core import read_stack, write_stack


def fidreg(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "napari_fidreg.cli", *map(str, args)], capture_output=True, text=True, **kwargs
    )


def one_error_line(res, *fragments):
    """Exit 2 and a single 'fidreg: error:' line holding every fragment, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("fidreg: error:")]
    assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
    for f in fragments:
        assert f in errors[0], errors[0]


@pytest.fixture
def registered(tmp_path, tiff_pair):
    ref, mov, pair = tiff_pair
    out = tmp_path / "out"
    res = fidreg("register", ref, mov, "--out", out, "--block-size", 64, "-q")
    assert res.returncode == 0, res.stderr
    return ref, mov, out, pair


def test_apply_never_overwrites_its_inputs(tmp_path, registered):
    _, mov, out, _ = registered
    shifts = out / "round2.shifts.json"
    before = file_digest(mov), file_digest(shifts)
    one_error_line(fidreg("apply", shifts, mov, "--out", mov), "is an input", "overwritten")
    one_error_line(fidreg("apply", shifts, mov, "--out", shifts), "is an input")
    # a folder as --out receives <name>.registered.tif beside the input, never over it
    assert fidreg("apply", shifts, mov, "--out", mov.parent).returncode == 0
    assert (mov.parent / "round2.registered.tif").exists()
    assert (file_digest(mov), file_digest(shifts)) == before


def test_a_batch_run_twice_into_its_folder_skips_its_own_results(tmp_path, tiff_pair):
    ref, mov, pair = tiff_pair
    folder = ref.parent
    write_stack(folder / "round3.tif", pair.moving)
    for _ in range(2):
        res = fidreg("register", ref, folder, "--out", folder, "--no-qc")
        assert res.returncode == 0, res.stderr
        assert "2 of 2 stacks registered" in res.stdout
    assert "skipped 2 result file(s) of an earlier run" in res.stderr
    assert not list(folder.glob("*.registered.registered*"))


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, tiff_pair):
    """The corrected stack's space is reserved before it is memory-mapped: a file-size
    limit (what a full disk looks like to a writer) gives one line, not SIGBUS."""
    ref, mov, _ = tiff_pair
    out = tmp_path / "full"
    out.mkdir()

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))  # the stack is 2 MB

    res = fidreg("register", ref, mov, "--out", out, "--no-qc", preexec_fn=limit)
    one_error_line(res, "no room for", "nothing was written")
    assert sorted(p.name for p in out.iterdir()) == []


def test_free_space_is_checked_before_writing(tmp_path, tiff_pair):
    from napari_fidreg.core.errors import FidregError
    from napari_fidreg.core.writers import check_free_space

    with pytest.raises(FidregError, match="not enough free disk space for the stack: it needs .* GiB"):
        check_free_space(tmp_path, 2**62, "the stack")


def test_sigterm_while_correcting_leaves_no_partial_file(tmp_path):
    pair = cached_pair((40, 768, 768), (1.0, 2.0, 3.0), seed=4)
    ref = write_stack(tmp_path / "ref.tif", pair.reference)
    mov = write_stack(tmp_path / "mov.tif", pair.moving)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_fidreg.cli", "register", str(ref), str(mov), "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if "correcting" in line:
            proc.send_signal(signal.SIGTERM)
            break
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, (proc.returncode, stdout, stderr)
    assert "terminated" in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == [], list(out.iterdir())


def test_stale_part_files_of_a_dead_run_are_removed(tmp_path, tiff_pair):
    ref, mov, _ = tiff_pair
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has ended
    stale = out / f".round2.shifts.json.pid{pid}.x1y2.part"
    stale.mkdir()
    (stale / "round2.registered.tif").write_bytes(b"half a stack")
    alive = out / f".round2.shifts.json.pid{os.getpid()}.z9.part"  # a running process's: kept
    alive.mkdir()
    res = fidreg("register", ref, mov, "--out", out, "--no-qc", "-q")
    assert res.returncode == 0, res.stderr
    assert not stale.exists() and alive.exists()


def test_a_rerun_replaces_the_result_set_as_a_whole(tmp_path, registered):
    ref, mov, out, _ = registered
    assert (out / "round2.qc.png").exists()
    res = fidreg("register", ref, mov, "--out", out, "--no-qc", "-q")
    assert res.returncode == 0, res.stderr
    # the QC image of the earlier run would not belong to this run's shifts
    assert sorted(p.name for p in out.iterdir()) == ["round2.blocks.csv", "round2.registered.tif", "round2.shifts.json"]


@pytest.mark.parametrize(
    "edit,fragments",
    [
        (lambda d: d["blocks"][0].__setitem__("shift", [float("nan"), 0, 0]), ["block 0 shift must be 3 finite"]),
        (lambda d: d["blocks"][0].__setitem__("shift", [float("inf"), 0, 0]), ["block 0 shift must be 3 finite"]),
        (lambda d: d["blocks"][1].__setitem__("shift", [0, 1e9, 0]), ["moves the stack out of itself along y"]),
        (lambda d: d.__setitem__("global_shift", [float("nan"), 0, 0]), ["global_shift must be 3 finite"]),
        (lambda d: d.__setitem__("grid_shape", [1, 3, 3]), ["blocks do not fill grid_shape [1, 3, 3]"]),
        (lambda d: d["blocks"][1].__setitem__("origin", d["blocks"][0]["origin"]), ["do not share one origin"]),
        (lambda d: d.__setitem__("format_version", "one"), ["format_version must be an integer"]),
        (lambda d: d.__setitem__("blocks", "many"), ["block 0 is not an object"]),
    ],
)
def test_apply_refuses_a_damaged_shifts_file_in_one_line(tmp_path, registered, edit, fragments):
    _, mov, out, _ = registered
    d = json.loads((out / "round2.shifts.json").read_text())
    edit(d)
    bad = tmp_path / "bad.shifts.json"
    bad.write_text(json.dumps(d))
    res = fidreg("apply", bad, mov, "--out", tmp_path / "x.tif")
    one_error_line(res, "bad.shifts.json", *fragments)
    assert not (tmp_path / "x.tif").exists()


def test_apply_refuses_deeply_nested_json(tmp_path, registered):
    _, mov, _, _ = registered
    bad = tmp_path / "deep.json"
    bad.write_text("[" * 100_000 + "]" * 100_000)
    one_error_line(fidreg("apply", bad, mov, "--out", tmp_path / "x.tif"), "nested too deeply")


@pytest.mark.parametrize("planes", [None, 1])
def test_single_images_register_and_are_written_back_as_they_came(tmp_path, planes):
    """A 2D TIFF (planes None) or a 1-plane stack registers in 2D; the outputs read back."""
    flat = cached_pair((1, 256, 256), (0.0, 2.4, -3.7), seed=5)
    ref_data, mov_data = (flat.reference[0], flat.moving[0]) if planes is None else (flat.reference, flat.moving)
    ref, mov = tmp_path / "ref.tif", tmp_path / "mov.tif"
    tifffile.imwrite(ref, ref_data)
    tifffile.imwrite(mov, mov_data)
    out = tmp_path / "out"
    res = fidreg("register", ref, mov, "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    d = json.loads((out / "mov.shifts.json").read_text())
    assert d["global_shift"][0] == 0.0
    np.testing.assert_allclose(d["global_shift"][1:], (2.4, -3.7), atol=0.05)
    corrected = tifffile.imread(out / "mov.registered.tif")
    assert corrected.shape == (256, 256)  # one plane, as ImageJ and tifffile read a 1-plane file
    assert read_stack(out / "mov.registered.tif").data.shape == (1, 256, 256)
    res = fidreg("apply", out / "mov.shifts.json", mov, "--out", tmp_path / "again.tif")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "again.tif"), corrected)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8", "int16", "uint8", "uint32", "int64"])
def test_every_real_or_integer_dtype_registers_with_qc(tmp_path, dtype):
    pair = cached_pair((24, 128, 128), (1.0, -2.0, 3.0), seed=6)
    scale = 0.01 if dtype in ("int8", "uint8") else 1.0
    ref, mov = tmp_path / "ref.tif", tmp_path / f"mov_{dtype}.tif"
    tifffile.imwrite(ref, (pair.reference * scale).astype(dtype))
    tifffile.imwrite(mov, (pair.moving * scale).astype(dtype))
    out = tmp_path / "out"
    res = fidreg("register", ref, mov, "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    d = json.loads((out / f"mov_{dtype}.shifts.json").read_text())
    np.testing.assert_allclose(d["global_shift"], (1.0, -2.0, 3.0), atol=0.1)
    assert tifffile.imread(out / f"mov_{dtype}.registered.tif").dtype == np.dtype(dtype)
    assert (out / f"mov_{dtype}.qc.png").stat().st_size > 1000


@pytest.mark.parametrize("compression", ["lzw", "zstd", "deflate"])
def test_compressed_tiffs_just_work(tmp_path, tiff_pair, compression):
    _, _, pair = tiff_pair
    ref, mov = tmp_path / "ref.tif", tmp_path / "mov.tif"
    tifffile.imwrite(ref, pair.reference, compression=compression)
    tifffile.imwrite(mov, pair.moving, compression=compression)
    res = fidreg("register", ref, mov, "--out", tmp_path / "out", "-q", "--no-qc")
    assert res.returncode == 0, res.stderr
    d = json.loads((tmp_path / "out" / "mov.shifts.json").read_text())
    np.testing.assert_allclose(d["global_shift"], (1.4, -3.3, 5.6), atol=0.05)


def test_a_corrupt_compressed_strip_names_the_file(tmp_path, tiff_pair):
    _, _, pair = tiff_pair
    ref, mov = tmp_path / "ref.tif", tmp_path / "mov.tif"
    tifffile.imwrite(ref, pair.reference, compression="zlib")
    tifffile.imwrite(mov, pair.moving, compression="zlib")
    with tifffile.TiffFile(mov) as tif:
        page = tif.pages[20]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    raw = bytearray(mov.read_bytes())
    raw[offset + 2 : offset + count - 2] = os.urandom(count - 4)
    mov.write_bytes(bytes(raw))
    before = file_digest(mov)
    one_error_line(fidreg("register", ref, mov, "--out", tmp_path / "out"), "mov.tif: cannot read TIFF")
    assert file_digest(mov) == before and not (tmp_path / "out" / "mov.shifts.json").exists()


def test_a_corrupt_zarr_chunk_names_the_store(tmp_path, tiff_pair):
    from napari_fidreg.core.writers import zarr_writer

    ref, _, pair = tiff_pair
    store = tmp_path / "mov.ome.zarr"
    with zarr_writer(store, pair.moving.shape, pair.moving.dtype) as arr:
        arr[...] = pair.moving
    chunks = sorted(p for p in (store / "0").rglob("*") if p.is_file() and not p.name.startswith("."))
    chunks[len(chunks) // 2].write_bytes(b"not a compressed chunk")
    one_error_line(fidreg("register", ref, store, "--out", tmp_path / "out"), "mov.ome.zarr: cannot read data")


def test_a_multi_series_ome_tiff_says_which_series_was_read(tmp_path, tiff_pair):
    ref, _, pair = tiff_pair
    mov = tmp_path / "two.ome.tif"
    with tifffile.TiffWriter(mov, ome=True) as tw:
        tw.write(pair.moving, metadata={"axes": "ZYX"})
        tw.write(pair.reference, metadata={"axes": "ZYX"})
    res = fidreg("register", ref, mov, "--out", tmp_path / "a", "--no-qc", "--no-stack")
    assert res.returncode == 0, res.stderr
    assert "holds 2 image series; series 0 was read (choose with --series)" in res.stdout
    np.testing.assert_allclose(json.loads((tmp_path / "a" / "two.shifts.json").read_text())["global_shift"],
                               (1.4, -3.3, 5.6), atol=0.05)  # fmt: skip
    res = fidreg("register", ref, mov, "--out", tmp_path / "b", "--series", 1, "--no-qc", "--no-stack")
    assert res.returncode == 0, res.stderr
    np.testing.assert_allclose(json.loads((tmp_path / "b" / "two.shifts.json").read_text())["global_shift"],
                               (0, 0, 0), atol=0.05)  # fmt: skip
    one_error_line(fidreg("register", ref, mov, "--out", tmp_path / "c", "--series", 5), "not series 5")
    # a stack of one series in the same command is read whole, and says that --series 1 was not for it
    assert f"{ref.name} holds a single image series: --series 1 does not apply to it" in res.stdout
    assert json.loads((tmp_path / "b" / "two.shifts.json").read_text())["warnings"][0].startswith(ref.name)


def test_a_file_named_like_a_glob_is_taken_literally(tmp_path, tiff_pair):
    ref, mov, _ = tiff_pair
    weird = tmp_path / "weird[1].tif"
    weird.write_bytes(mov.read_bytes())
    res = fidreg("register", ref, weird, "--out", tmp_path / "out", "--no-qc", "--no-stack")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "weird[1].shifts.json").exists()


@pytest.mark.parametrize("spec", ["local", "2", "local:0", "local:x"])
def test_a_bad_cluster_spec_is_one_line(tmp_path, tiff_pair, spec):
    ref, mov, _ = tiff_pair
    one_error_line(fidreg("register", ref, mov, "--out", tmp_path / "o", "--cluster", spec), "expected local:N")


def test_parameters_wrong_for_every_stack_are_reported_once_up_front(tmp_path, tiff_pair):
    ref, mov, pair = tiff_pair
    mov2 = write_stack(tmp_path / "round3.tif", pair.moving)
    t0 = time.perf_counter()
    res = fidreg("register", ref, mov, mov2, "--out", tmp_path / "o", "--block-size", 512)
    one_error_line(res, "block size 512 is larger than the y extent 160", "for every moving stack")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
    assert time.perf_counter() - t0 < 60  # nothing was computed (a generous bound: start-up only)


def test_output_folder_problems_are_found_before_any_work(tmp_path, tiff_pair):
    ref, mov, _ = tiff_pair
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    one_error_line(fidreg("register", ref, mov, "--out", a_file), "is a file, not a folder")
    one_error_line(fidreg("register", ref, mov, "--out", a_file / "sub"), "is a file, so no folder can be made")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_error_line(fidreg("register", ref, mov, "--out", locked), "permission denied")


def test_fortran_ordered_and_transposed_arrays_register(small_pair):
    from napari_fidreg.core import register

    expected = register(small_pair.reference, small_pair.moving).global_shift
    for ref, mov in (
        (np.asfortranarray(small_pair.reference), np.asfortranarray(small_pair.moving)),
        (small_pair.reference.T.copy().T, small_pair.moving.T.copy().T),
        (small_pair.reference[:, ::-1, :][:, ::-1, :], small_pair.moving[:, ::-1, :][:, ::-1, :]),
    ):
        np.testing.assert_allclose(register(ref, mov).global_shift, expected, atol=1e-6)


def test_a_truncated_uncompressed_tiff_fails_alone_in_a_batch(tmp_path, tiff_pair):
    ref, mov, _ = tiff_pair
    _, _, pair = tiff_pair
    tifffile.imwrite(tmp_path / "full.tif", pair.moving)  # plain tifffile (the ImageJ case: test_io)
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: len(raw) // 2])
    res = fidreg("register", ref, mov, tmp_path / "cut.tif", "--out", tmp_path / "o", "--no-qc", "--no-stack")
    assert res.returncode == 1, res.stderr  # one of two failed; the other is written
    errors = [line for line in res.stderr.splitlines() if line.startswith("fidreg: error:")]
    assert len(errors) == 1 and "cut.tif: truncated or damaged" in errors[0], res.stderr
    assert errors[0].count("cut.tif") == 1  # the path said once
    assert "invalid page offset" not in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "o" / "round2.shifts.json").exists()


def test_pages_that_are_time_points_are_said_to_be_taken_as_z(tmp_path, tiff_pair):
    ref, _, pair = tiff_pair
    tyx = tmp_path / "rounds.tif"
    tifffile.imwrite(tyx, pair.moving, metadata={"axes": "TYX"})
    res = fidreg("register", ref, tyx, "--out", tmp_path / "o", "--no-qc", "--no-stack")
    assert res.returncode == 0, res.stderr
    assert "its pages are time points according to the file, and were registered as z planes" in res.stdout


def test_errors_about_a_stack_name_its_file(tmp_path, tiff_pair):
    ref, _, _ = tiff_pair
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.full((40, 160, 160), 5, np.uint16))
    one_error_line(fidreg("register", ref, flat, "--out", tmp_path / "o"), "flat.tif (moving): image is constant")


def test_an_ome_zarr_without_voxel_size_reads_back_without_one(tmp_path, tiff_pair):
    from napari_fidreg.core.writers import zarr_writer

    _, _, pair = tiff_pair
    with zarr_writer(tmp_path / "a.ome.zarr", pair.moving.shape, pair.moving.dtype) as arr:
        arr[...] = pair.moving
    with zarr_writer(tmp_path / "b.ome.zarr", pair.moving.shape, pair.moving.dtype, voxel_size=(0.2, 0.1, 0.1)) as arr:
        arr[...] = pair.moving
    assert read_stack(tmp_path / "a.ome.zarr").voxel_size is None
    assert read_stack(tmp_path / "b.ome.zarr").voxel_size == (0.2, 0.1, 0.1)


def test_output_piped_into_head_is_not_an_error(tmp_path, tiff_pair):
    ref, mov, pair = tiff_pair
    mov2 = write_stack(tmp_path / "round3.tif", pair.moving)
    cmd = [sys.executable, "-m", "napari_fidreg.cli", "register", str(ref), str(mov), str(mov2), "--out",
           str(tmp_path / "o"), "--no-qc", "--no-stack", "-q"]  # fmt: skip
    res = subprocess.run(f"{' '.join(map(repr, cmd))} | head -c 10; exit ${{PIPESTATUS[0]}}", shell=True,
                         executable="/bin/bash", capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0 and "Broken pipe" not in res.stderr, res.stderr


def test_out_of_memory_names_the_stage_and_the_option_that_helps():
    # MemoryError cannot be provoked reliably in a test process; the hint is what the CLI prints
    from napari_fidreg.core.errors import FidregError
    from napari_fidreg.pipeline import _out_of_memory_hint

    with pytest.raises(FidregError, match=r"out of memory while drawing the QC image \(try --no-qc\)"):
        with _out_of_memory_hint("drawing the QC image", "--no-qc"):
            raise MemoryError


def test_ctrl_c_in_a_batch_leaves_a_drift_table_with_a_row_for_every_result_set(tmp_path):
    base = cached_pair((30, 160, 160), (0, 0, 0), seed=71)
    ref = write_stack(tmp_path / "H0_ref.tif", base.reference)
    # 40 rounds: ~2 s of work left when the first is done, so that Ctrl-C lands mid-batch even
    # when this process is slow to read its line (with 12 the batch once finished first, under load)
    for i in range(1, 41):
        write_stack(tmp_path / f"H{i}_beads.tif", np.roll(base.moving, i % 4, axis=2))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_fidreg.cli", "register", str(ref), str(tmp_path), "--out", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:
        if "stacks done" in line:  # small stacks: two at a time, one more is running now
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, stdout, stderr)
    done = sorted(p.name.removesuffix(".shifts.json") for p in out.glob("*.shifts.json"))
    with open(out / "drift.csv", newline="") as f:
        rows = sorted(r["moving"] for r in csv.DictReader(f))
    assert 1 <= len(done) < 40 and rows == done, (rows, done)
