"""Shared fixtures: synthetic fiducial pairs with known truth, written as real TIFFs when needed."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import tifffile

from napari_fidreg.core.synthetic import fiducial_pair

# Qt/napari tests need a display: run under xvfb-run (see README); keep runtime dirs private.
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/runtime-fidreg")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)


@functools.lru_cache(maxsize=16)
def cached_pair(shape=(60, 256, 256), shift=(1.3, -4.6, 7.25), seed=0, deformation=None, empty=False):
    """Synthetic pairs are deterministic; cache them across tests (never mutate them)."""
    empty_region = (slice(0, shape[1] // 4), slice(0, shape[2] // 4)) if empty else None
    pair = fiducial_pair(shape, shift, seed=seed, deformation=deformation, empty_region=empty_region)
    pair.reference.setflags(write=False)
    pair.moving.setflags(write=False)
    return pair


def later_round(moving, shift) -> np.ndarray:
    """The same field in a later round, uint16: ``moving``'s content displaced by ``-shift``, so
    that ``shift`` is what registering it should report (linear interpolation, edges held)."""
    from scipy import ndimage

    moved = ndimage.shift(np.asarray(moving, dtype=np.float32), np.negative(shift), order=1, mode="nearest")
    return np.rint(moved).astype(np.uint16)


def open_sample(viewer):
    """The plugin's sample pair opened in ``viewer``: (reference layer, moving layer)."""
    from napari_fidreg._sample_data import MOVING_NAME, REFERENCE_NAME

    viewer.open_sample("napari-fidreg", "fiducial_pair")
    return viewer.layers[REFERENCE_NAME], viewer.layers[MOVING_NAME]


def run_dock(qtbot, widget, timeout=60_000):
    """Click a dock's Run and wait until its worker is done (its inputs were accepted)."""
    widget.run()
    assert widget.worker is not None, widget.last_error
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


@pytest.fixture
def small_pair():
    return cached_pair((40, 160, 160), (1.4, -3.3, 5.6), seed=1)


@pytest.fixture
def tiff_pair(tmp_path):
    """A reference/moving pair on disk with voxel size metadata; returns (ref_path, mov_path, pair)."""
    pair = cached_pair((40, 160, 160), (1.4, -3.3, 5.6), seed=1)
    ref = tmp_path / "ref.tif"
    mov = tmp_path / "round2.tif"
    for path, data in ((ref, pair.reference), (mov, pair.moving)):
        tifffile.imwrite(
            path,
            data,
            imagej=True,
            resolution=(1 / 0.15, 1 / 0.15),
            metadata={"spacing": 0.2, "unit": "um", "axes": "ZYX"},
        )
    return ref, mov, pair


def file_digest(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run(gen):
    """Drain a generator: (the items it yielded, the value it returned)."""
    ticks = []
    while True:
        try:
            ticks.append(next(gen))
        except StopIteration as stop:
            return ticks, stop.value
