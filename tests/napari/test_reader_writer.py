import numpy as np
import pytest
import tifffile

from napari_fidreg._reader import get_reader
from napari_fidreg._writer import write_image
from napari_fidreg.core import read_stack

pytestmark = pytest.mark.gui


def test_reader_gives_named_layers_with_voxel_scale(tiff_pair):
    ref, mov, pair = tiff_pair
    reader = get_reader(str(ref))
    assert reader is not None
    [(data, meta, kind)] = reader(str(ref))
    assert kind == "image" and meta["name"] == "ref"
    np.testing.assert_allclose(meta["scale"], (0.2, 0.15, 0.15), rtol=1e-6)
    np.testing.assert_array_equal(data, pair.reference)
    both = get_reader([str(ref), str(mov)])([str(ref), str(mov)])
    assert [m["name"] for _, m, _ in both] == ["ref", "round2"]


def test_reader_declines_other_files(tmp_path):
    assert get_reader(str(tmp_path / "x.png")) is None
    assert get_reader([]) is None


def test_writer_round_trip_keeps_data_and_scale(tmp_path):
    data = np.random.default_rng(0).integers(0, 5000, (6, 20, 24)).astype(np.uint16)
    [path] = write_image(str(tmp_path / "out.tif"), data, {"scale": (0.2, 0.15, 0.15), "name": "x"})
    [(back, meta, _)] = get_reader(path)(path)
    np.testing.assert_array_equal(back, data)
    np.testing.assert_allclose(meta["scale"], (0.2, 0.15, 0.15), rtol=1e-6)


def test_viewer_open_and_save_through_napari(make_napari_viewer, tiff_pair, tmp_path):
    ref, _, pair = tiff_pair
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(ref), plugin="napari-fidreg")
    np.testing.assert_allclose(layer.scale, (0.2, 0.15, 0.15), rtol=1e-6)
    target = tmp_path / "saved.tif"
    viewer.layers.save(str(target), selected=False, plugin="napari-fidreg")
    stack = read_stack(target)
    np.testing.assert_array_equal(stack.data, pair.reference)
    np.testing.assert_allclose(stack.voxel_size, (0.2, 0.15, 0.15), rtol=1e-6)
    assert tifffile.TiffFile(target).is_imagej
