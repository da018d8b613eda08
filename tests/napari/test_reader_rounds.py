"""A file of rounds (4D TIFF hyperstack, 4D Zarr) opens in napari as one 4D layer, rounds on the slider."""

import numpy as np
import pytest
import tifffile

from napari_fidreg.core import FidregError, read_stack
from napari_fidreg.core.io import is_rounds_file


@pytest.fixture
def rounds_tiff(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, size=(3, 6, 32, 40), dtype=np.uint16)
    path = tmp_path / "fov1_rounds.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.15, 1 / 0.15),
                     metadata={"spacing": 0.2, "unit": "um", "axes": "TZYX"})  # fmt: skip
    return path, data


def test_the_reader_opens_a_4d_tiff_as_rounds(make_napari_viewer, rounds_tiff):
    path, data = rounds_tiff
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-fidreg")
    assert len(layers) == 1
    layer = layers[0]
    assert layer.data.shape == (3, 6, 32, 40) and layer.ndim == 4
    np.testing.assert_allclose(layer.scale, (1.0, 0.2, 0.15, 0.15), rtol=1e-6)
    assert layer.metadata["rounds"] == 3
    np.testing.assert_array_equal(np.asarray(layer.data[2]), data[2])
    assert viewer.dims.nsteps[0] == 3  # the rounds are under the first slider


def test_rounds_in_the_library_and_refusals(tmp_path, rounds_tiff):
    path, data = rounds_tiff
    assert is_rounds_file(path)
    stack = read_stack(path, rounds=True)
    assert stack.ndim == 4 and stack.data.shape == data.shape and not stack.notes
    with pytest.raises(FidregError, match="expected a 3D"):
        read_stack(path)  # a 4D file is not silently taken as a stack
    flat = tmp_path / "stack.tif"
    tifffile.imwrite(flat, data[0])
    assert not is_rounds_file(flat)
    with pytest.raises(FidregError, match=r"expected a 4D \(round, z, y, x\)"):
        read_stack(flat, rounds=True)


def test_a_4d_zarr_array_is_rounds(tmp_path, rounds_tiff):
    import zarr

    _, data = rounds_tiff
    store = tmp_path / "rounds.zarr"
    z = zarr.open(str(store), mode="w", shape=data.shape, dtype=data.dtype, chunks=(1, 6, 32, 40))
    z[...] = data
    assert is_rounds_file(store)
    np.testing.assert_array_equal(np.asarray(read_stack(store, rounds=True).data[1]), data[1])
