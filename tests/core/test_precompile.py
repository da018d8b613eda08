"""``compile_kernels`` leaves numba's cache holding every signature the engine then uses.

Each check runs in fresh interpreters on an empty cache of its own (``NUMBA_CACHE_DIR``),
as a first run after installing would: one compiles, the next registers files and arrays
and must compile nothing.
"""

import json
import os
import subprocess
import sys

import numpy as np
import tifffile

from napari_fidreg.core.precompile import DTYPES
from napari_fidreg.core.synthetic import fiducial_pair

# After compile_kernels(("uint16", "float32")): what the CLI, the batch and the docks run on
# those dtypes, from uncompressed (memory-mapped, read-only) and compressed (decoded, writeable)
# files and from arrays in memory; then every kernel's compilations, per dtype.
USE = """
import json, sys
import numpy as np, tifffile
from napari_fidreg.core import kernels, register, warp
from napari_fidreg.core.params import Params
from napari_fidreg.pipeline import register_files

d = sys.argv[1]
for dt in ("uint16", "float32"):
    for kind in ("raw", "zlib"):
        ref, mov = f"{d}/{dt}_{kind}_ref.tif", f"{d}/{dt}_{kind}_mov.tif"
        register_files(ref, mov, f"{d}/out_{dt}_{kind}")  # global only, QC image and corrected stack
        register_files(ref, mov, f"{d}/blocks_{dt}_{kind}", Params(block_size=32), write_stack_file=False)
    a, b = tifffile.imread(f"{d}/{dt}_raw_ref.tif"), tifffile.imread(f"{d}/{dt}_raw_mov.tif")
    reg = register(a, b, block_size=32, block_size_z=6)  # a layer's array, blocks in z too
    warp(b, reg)
    warp(b, reg.global_shift, order=0)
print(json.dumps({k.py_func.__name__: sum(k.stats.cache_misses.values()) for k in kernels.dispatchers()}))
"""


def _python(code: str, *args, cache) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_after_compile_kernels_no_registration_compiles_anything(tmp_path):
    pair = fiducial_pair((12, 64, 64), (1.0, -2.0, 3.0), n_hot_pixels=3, seed=4)
    for dt in ("uint16", "float32"):
        for kind, compression in (("raw", None), ("zlib", "zlib")):
            for role, vol in (("ref", pair.reference), ("mov", pair.moving)):
                tifffile.imwrite(tmp_path / f"{dt}_{kind}_{role}.tif", vol.astype(dt), compression=compression)
    cache = tmp_path / "numba-cache"
    _python("from napari_fidreg.core.precompile import compile_kernels\ncompile_kernels(('uint16', 'float32'))",
            cache=cache)  # fmt: skip
    assert any(cache.rglob("*.nbc"))  # compiled into this cache, not elsewhere
    misses = json.loads(_python(USE, tmp_path, cache=cache).strip().splitlines()[-1])
    assert misses and set(misses.values()) == {0}, misses


def test_compile_covers_what_microscopes_write():
    assert DTYPES[0] == "uint16"  # the cameras' own, compiled first
    assert {"uint8", "uint16", "int16", "float32", "float64"} <= set(DTYPES)
    assert all(np.dtype(d).isnative for d in DTYPES)
