"""A TIFF of channels (ImageJ ZCYX, OME CZYX) opens as one layer per channel, is refused as a
fiducial stack with what to do instead, and is written back as channels."""

import numpy as np
import pytest
import tifffile

from napari_fidreg.core import FidregError, read_stack, write_stack
from napari_fidreg.core.io import channel_count, is_rounds_file, stack_header

VOXEL = (0.2, 0.15, 0.15)


@pytest.fixture(params=["imagej-ZCYX", "ome-CZYX"])
def channels_tiff(tmp_path, request):
    """A (channel, z, y, x) truth and a file holding it as microscopes' software writes it."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 4000, size=(3, 6, 32, 40), dtype=np.uint16)  # (c, z, y, x)
    path = tmp_path / "H2R2_round.tif"
    if request.param == "imagej-ZCYX":
        tifffile.imwrite(path, np.moveaxis(data, 0, 1), imagej=True, resolution=(1 / 0.15, 1 / 0.15),
                         metadata={"spacing": 0.2, "unit": "um", "axes": "ZCYX"})  # fmt: skip
    else:
        path = path.with_suffix(".ome.tif")
        tifffile.imwrite(path, data, ome=True, metadata={"axes": "CZYX", "PhysicalSizeZ": 0.2,
                         "PhysicalSizeY": 0.15, "PhysicalSizeX": 0.15})  # fmt: skip
    return path, data


def test_channels_read_channel_first_and_are_no_fiducial_stack(channels_tiff):
    path, data = channels_tiff
    assert channel_count(path) == 3 and not is_rounds_file(path)  # channels are not rounds
    stack = read_stack(path, channels=True)
    assert stack.ndim == 4 and stack.data.shape == (3, 6, 32, 40)
    np.testing.assert_array_equal(stack.data, data)
    np.testing.assert_allclose(stack.voxel_size, VOXEL, rtol=1e-6)
    for read in (read_stack, stack_header):
        with pytest.raises(FidregError, match=r"holds 3 channels \(.*\): register its fiducial channel as a stack"):
            read(path)


def test_a_plain_stack_is_not_channels(tmp_path):
    flat = write_stack(tmp_path / "stack.tif", np.ones((4, 16, 16), np.uint16))
    assert channel_count(flat) == 1 and channel_count(tmp_path / "absent.tif") == 1
    with pytest.raises(FidregError, match="not a file of channels"):
        read_stack(flat, channels=True)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])  # ImageJ types, and a plain TIFF's
def test_channels_are_written_back_as_channels(tmp_path, dtype):
    data = np.random.default_rng(2).random((2, 5, 24, 20)).astype(dtype) * 1000
    path = write_stack(tmp_path / "c.tif", data, voxel_size=VOXEL, channels=True)
    back = read_stack(path, channels=True)
    np.testing.assert_array_equal(back.data, data)
    assert back.data.dtype == dtype
    if dtype != np.float64:  # ImageJ metadata: voxel size and hyperstack axes
        np.testing.assert_allclose(back.voxel_size, VOXEL, rtol=1e-6)
        assert tifffile.TiffFile(path).series[0].axes == "ZCYX"
    with pytest.raises(FidregError, match="channels are a 4D"):
        write_stack(tmp_path / "d.tif", data[0], channels=True)


def test_the_reader_opens_a_layer_per_channel(make_napari_viewer, channels_tiff):
    path, data = channels_tiff
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-fidreg")
    assert [layer.name for layer in layers] == [f"{path.name.split('.')[0]} [channel {c}]" for c in range(3)]
    for c, layer in enumerate(layers):
        assert layer.ndim == 3 and layer.metadata["channel"] == c
        np.testing.assert_array_equal(np.asarray(layer.data), data[c])
        np.testing.assert_allclose(layer.scale, VOXEL, rtol=1e-6)


def test_a_z_stack_written_with_imagej_and_no_axes_is_planes_not_channels(make_napari_viewer, tmp_path):
    """tifffile.imwrite(path, zyx, imagej=True) records ImageJ channels (axes CYX): still a z stack."""
    zyx = np.random.default_rng(3).integers(0, 4000, size=(24, 32, 40), dtype=np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, zyx, imagej=True)
    assert tifffile.TiffFile(path).series[0].axes == "CYX" and channel_count(path) == 1
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.data, zyx)
    assert "registered as z planes" in stack.notes[0]
    layers = make_napari_viewer().open(str(path), plugin="napari-fidreg")
    assert len(layers) == 1 and layers[0].data.shape == (24, 32, 40)
