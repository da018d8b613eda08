"""Compile the engine's kernels ahead of the first registration (``fidreg compile``).

numba compiles a kernel the first time it meets a type of input and keeps the machine
code in its cache on disk (``__pycache__`` beside the package, or the user's cache
folder where the package's is read-only), which later processes load in milliseconds.
Left to the first registration, that was ~4.5 s of the first run after installing, and
~2.5 s of the first run on each other dtype of stack (uint8, float32, ...): a user's
first impression, and a figure taken in a clean checkout. :func:`compile_kernels` pays
it once, up front: it registers and corrects a tiny synthetic pair of each dtype of
``DTYPES`` the way the CLI, the batch and the docks do (blocks in y/x and in z, hot
pixels, the QC projections, the label correction), so that every signature they use
is in the cache.

The kernels take their inputs read-only (:func:`~.validate.kernel_input`), so a
memory-mapped file, a decoded compressed file and a napari layer share one signature
per dtype.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .params import Params
from .progress import drain
from .qc import Reduction, projections
from .register import register
from .synthetic import fiducial_pair
from .warp import iter_warp, warp

DTYPES = ("uint16", "uint8", "int16", "uint32", "int32", "float32", "float64")
"""What microscopes and processing write; big-endian and float16 files are read as these.
Another dtype (int8, 64-bit integers) compiles on its first run, as before."""

_SHAPE = (12, 64, 64)
_PARAMS = Params(block_size=32, block_size_z=6)  # blocks in y/x and z: the z-varying correction too


def compile_kernels(
    dtypes: Sequence[str] = DTYPES, *, on_dtype: Callable[[str, float], None] | None = None
) -> dict[str, float]:
    """Compile (or load from numba's cache) every kernel signature the engine uses for ``dtypes``.

    Returns the seconds each dtype took (~2-3 s compiled, ~0.1 s loaded from the cache);
    ``on_dtype(dtype, seconds)`` is called as each is done.
    """
    pair = fiducial_pair(_SHAPE, (1.0, -2.0, 3.0), n_hot_pixels=4, seed=1)
    taken = {}
    for name in dtypes:
        t0 = time.perf_counter()
        ref, mov = (_as_dtype(v, np.dtype(name)) for v in (pair.reference, pair.moving))
        reg = register(ref, mov, _PARAMS, workers=2)
        # the corrected stack written plane by plane (shifts varying in z), its QC reduced as it goes
        reduction = Reduction(ref.shape, 1)
        drain(iter_warp(mov, reg, out=np.empty_like(mov), on_plane=reduction.add_plane))
        reduction.projections()
        warp(mov, reg, use_blocks=False)  # the global shift alone: the fast path, one shift for all planes
        if name == "uint16":  # a channel of a ZCYX hyperstack (Fiji's), strided, read in place
            warp(np.stack([mov, mov], axis=1)[:, 0], reg, use_blocks=False)
        warp(mov, reg.global_shift, order=0)  # labels: nearest neighbour
        projections(ref, bin=2)  # a stack's own QC projections (no corrected stack written)
        taken[name] = time.perf_counter() - t0
        if on_dtype is not None:
            on_dtype(name, taken[name])
    return taken


def _as_dtype(vol: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``vol`` (counts of a few thousand) in ``dtype``, scaled into an 8-bit range where needed."""
    if dtype.itemsize == 1:
        vol = vol * (200.0 / float(vol.max()))
    return np.asarray(vol, dtype=dtype)
