"""core/writers.py: atomic writes, temporary-file naming and clean-up, space checks."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_fidreg.core.errors import FidregError
from napari_fidreg.core.io import read_stack
from napari_fidreg.core.writers import (
    atomic_write_bytes,
    atomic_write_text,
    check_free_space,
    remove_stale_parts,
    stack_writer,
    temp_prefix,
    write_stack,
    zarr_writer,
)


def _dead_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(out.stdout)


def test_temporary_files_carry_this_process_id(tmp_path):
    assert temp_prefix(tmp_path / "a.tif") == f".a.tif.pid{os.getpid()}."


def test_stale_parts_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "x[1]*?.tif"  # glob characters in the name are taken literally
    dead = tmp_path / f".x[1]*?.tif.pid{_dead_pid()}.ab12.part"
    dead.write_bytes(b"partial")
    dead_dir = tmp_path / f".x[1]*?.tif.pid{_dead_pid()}.cd34.part"
    dead_dir.mkdir()
    (dead_dir / "inner").write_bytes(b"x")
    live = tmp_path / f".x[1]*?.tif.pid{os.getpid()}.ef56.part"
    lookalike = tmp_path / f".x1.tif.pid{_dead_pid()}.ij90.part"  # what the name would glob to
    live.write_bytes(b"mine")
    other = tmp_path / f".y.tif.pid{_dead_pid()}.gh78.part"  # another target's: not ours to touch
    other.write_bytes(b"y")
    lookalike.write_bytes(b"z")
    removed = remove_stale_parts(target)
    assert sorted(p.name for p in removed) == sorted([dead.name, dead_dir.name])
    assert live.exists() and other.exists() and lookalike.exists() and not dead.exists() and not dead_dir.exists()


def test_atomic_writes_replace_whole_files_and_keep_usual_permissions(tmp_path):
    p = atomic_write_text(tmp_path / "a.json", "first")
    atomic_write_text(p, "second")
    assert p.read_text() == "second" and list(tmp_path.iterdir()) == [p]
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()
    b = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert b.read_bytes() == b"\x00\x01"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_leaves_the_old_file_and_no_part(tmp_path):
    p = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(p, "\ud800")  # not encodable: fails after the temporary file exists
    assert p.read_text() == "old" and sorted(tmp_path.iterdir()) == [p]


def test_write_stack_keeps_2d_and_3d_and_voxel_size(tmp_path):
    img = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    write_stack(tmp_path / "img.tif", img, voxel_size=(1.0, 0.1, 0.1))
    assert tifffile.imread(tmp_path / "img.tif").shape == (20, 30)
    assert read_stack(tmp_path / "img.tif").ndim == 2
    vol = np.ones((3, 20, 30), np.float32)
    write_stack(tmp_path / "vol.tif", vol, voxel_size=(0.3, 0.1, 0.1))
    stack = read_stack(tmp_path / "vol.tif")
    np.testing.assert_allclose(stack.voxel_size, (0.3, 0.1, 0.1), rtol=1e-6)
    with pytest.raises(FidregError, match="cannot write data of type complex64"):
        write_stack(tmp_path / "c.tif", np.zeros((2, 4, 4), np.complex64))
    with pytest.raises(FidregError, match="a 3D stack or a 2D image"):
        write_stack(tmp_path / "d.tif", np.zeros((2, 2, 4, 4), np.uint16))


def test_stack_writer_appears_only_when_complete(tmp_path):
    target = tmp_path / "s.tif"
    with stack_writer(target, (4, 16, 16), np.uint16, voxel_size=(0.2, 0.1, 0.1)) as out:
        for z in range(4):
            out[z] = z
        assert not target.exists()  # still a temporary file
    np.testing.assert_array_equal(tifffile.imread(target)[:, 0, 0], [0, 1, 2, 3])
    with pytest.raises(RuntimeError), stack_writer(tmp_path / "t.tif", (4, 16, 16), np.uint16) as out:
        out[0] = 1
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


def test_stack_writer_takes_planes_from_several_threads_in_any_order(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    data = np.random.default_rng(0).integers(0, 60000, (9, 33, 17)).astype(np.uint16)
    target = tmp_path / "p.tif"
    with stack_writer(target, data.shape, data.dtype, voxel_size=(0.5, 0.2, 0.2)) as out:
        assert out.shape == data.shape and out.dtype == data.dtype
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda z: out.__setitem__(z, data[z]), [4, 0, 8, 2, 6, 1, 3, 7, 5]))
        with pytest.raises(IndexError):
            out[9] = data[0]
    back = read_stack(target)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.voxel_size, (0.5, 0.2, 0.2))
    image = tmp_path / "i.tif"  # a single image: one plane
    with stack_writer(image, (5, 6), np.float32) as out:
        assert out.shape == (1, 5, 6)
        out[0] = 2.5
    assert tifffile.imread(image).shape == (5, 6) and (tifffile.imread(image) == 2.5).all()


def test_zarr_writer_replaces_a_store_only_when_complete(tmp_path):
    target = tmp_path / "z.ome.zarr"
    with zarr_writer(target, (2, 8, 8), np.uint16) as arr:
        arr[...] = 7
    with pytest.raises(RuntimeError), zarr_writer(target, (2, 8, 8), np.uint16) as arr:
        arr[...] = 9
        raise RuntimeError("interrupted")
    assert int(np.asarray(read_stack(target).data[0, 0, 0])) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.ome.zarr"]


def test_free_space_check(tmp_path):
    check_free_space(tmp_path, 1, "a byte")
    with pytest.raises(FidregError, match=r"not enough free disk space for the stack: it needs [\d.]+ GiB"):
        check_free_space(tmp_path, 2**62, "the stack")
