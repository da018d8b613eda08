"""Larger-than-memory stacks and OME-Zarr: bounded memory, lazy inputs, chunked outputs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.core import read_stack, register, write_stack
from napari_fidreg.core.writers import zarr_writer
from napari_fidreg.pipeline import register_files

CAPPED = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from napari_fidreg.core.params import Params
    from napari_fidreg.core.io import read_stack
    from napari_fidreg.pipeline import register_files

    ref, mov, out, headroom = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    register_files(ref, mov, out + "/warmup", Params(), subvolume=((0, 8), (0, 64), (0, 64)), workers=1, write_qc=False)
    data = int(next(l for l in open("/proc/self/status") if l.startswith("VmData")).split()[1]) * 1024
    cap = data + headroom
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    stack_bytes = read_stack(mov, lazy=True).data.nbytes
    try:  # the cap is real: a copy of the stack in memory does not fit
        np.array(read_stack(mov, lazy=True).data)
        fits = True
    except MemoryError:
        fits = False
    reg, _ = register_files(ref, mov, out, Params(block_size=128), workers=1, write_qc=False)
    print(json.dumps({"shift": reg.global_shift, "cap_above_start": headroom, "stack_bytes": stack_bytes, "copy_fits": fits}))
    """
)


def test_registers_a_stack_larger_than_its_memory_cap(tmp_path):
    shift = (1.3, -4.2, 6.7)
    # 48 x 2048 x 2048 uint16 = 384 MiB per stack, made by tiling a 1024^2 pair 2 x 2: the
    # period (1024 px) is beyond the shift search range (512 px), so no ambiguous peak.
    pair = cached_pair((48, 1024, 1024), shift, seed=31)
    ref = write_stack(tmp_path / "ref.tif", np.tile(pair.reference, (1, 2, 2)))
    mov = write_stack(tmp_path / "mov.tif", np.tile(pair.moving, (1, 2, 2)))
    script = tmp_path / "capped.py"
    script.write_text(CAPPED)
    headroom = 280 * 2**20  # ... and the process may allocate only 280 MiB more than after start-up
    res = subprocess.run(
        [sys.executable, str(script), str(ref), str(mov), str(tmp_path / "out"), str(headroom)],
        capture_output=True, text=True,
        # RLIMIT_DATA also counts glibc's per-thread malloc arenas (up to 64 MiB of heap each),
        # how many depends on thread timing: with one arena the cap measures what is allocated,
        # the same from run to run (the arenas made this test fail now and then)
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["stack_bytes"] > headroom and not out["copy_fits"]
    np.testing.assert_allclose(out["shift"], shift, atol=0.03)
    corrected = read_stack(tmp_path / "out" / "mov.registered.tif")
    assert corrected.data.shape == (48, 2048, 2048)


def test_ome_zarr_round_trip_and_registration_from_zarr(tmp_path):
    pair = cached_pair((40, 160, 160), (1.4, -3.3, 5.6), seed=1)
    paths = []
    for name, data in (("ref", pair.reference), ("mov", pair.moving)):
        with zarr_writer(
            tmp_path / f"{name}.ome.zarr", data.shape, data.dtype, voxel_size=(0.2, 0.15, 0.15), chunk_yx=64
        ) as arr:
            for z in range(data.shape[0]):
                arr[z] = data[z]
        paths.append(tmp_path / f"{name}.ome.zarr")
    stack = read_stack(paths[0])
    assert not isinstance(stack.data, np.ndarray)  # lazy
    assert stack.voxel_size == (0.2, 0.15, 0.15) and stack.name == "ref"
    np.testing.assert_array_equal(np.asarray(stack.data[:]), pair.reference)
    reg, written = register_files(paths[0], paths[1], tmp_path / "out", stack_format="zarr", write_qc=False)
    np.testing.assert_allclose(reg.global_shift, (1.4, -3.3, 5.6), atol=0.05)
    out = read_stack(tmp_path / "out" / "mov.registered.ome.zarr")
    assert out.data.shape == pair.reference.shape and out.voxel_size == (0.2, 0.15, 0.15)
    # same correction as from the in-memory arrays
    from napari_fidreg.core import warp

    # lazy sources go through the slab kernel, in-memory ones through the z-invariant fast
    # path: float rounding may differ by one count
    diff = np.abs(np.asarray(out.data[:]).astype(int) - warp(pair.moving, reg).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    meta = json.loads((tmp_path / "out" / "mov.registered.ome.zarr" / ".zattrs").read_text())
    assert meta["multiscales"][0]["version"] == "0.4"


def test_lazy_zarr_input_registers_like_numpy(tmp_path):
    pair = cached_pair((40, 160, 160), (1.4, -3.3, 5.6), seed=1)
    with zarr_writer(tmp_path / "m.zarr", pair.moving.shape, pair.moving.dtype, chunk_yx=64) as arr:
        arr[:] = pair.moving
    lazy = read_stack(tmp_path / "m.zarr").data
    a = register(pair.reference, lazy, block_size=80)
    b = register(pair.reference, pair.moving, block_size=80)
    np.testing.assert_allclose(a.global_shift, b.global_shift, atol=1e-9)


@pytest.mark.parametrize("bad", ["plain_dir"])
def test_a_folder_that_is_not_zarr(tmp_path, bad):
    from napari_fidreg.core import FidregError

    (tmp_path / bad).mkdir()
    with pytest.raises(FidregError, match="neither a TIFF file nor a Zarr store"):
        read_stack(tmp_path / bad)
