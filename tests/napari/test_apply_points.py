"""Spots as a napari points layer, mapped into the reference frame by the registration dock."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg._widgets import RegistrationWidget
from napari_fidreg.core.points import map_points

pytestmark = pytest.mark.gui


def test_a_points_layer_maps_into_the_reference_frame(make_napari_viewer, qtbot):
    pair = cached_pair((30, 192, 192), (0.8, -3.2, 4.1), seed=51, deformation=(0.3, 1.0, 1.0))
    viewer = make_napari_viewer()
    ref = viewer.add_image(pair.reference, name="ref", scale=(0.2, 0.1, 0.1))
    mov = viewer.add_image(pair.moving, name="mov", scale=(0.2, 0.1, 0.1))
    widget = RegistrationWidget(viewer)
    widget.reference.value, widget.moving.value = ref, mov
    widget.with_blocks.value, widget.block_size.value = True, 64
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    reg = widget.result.registration
    inside = np.all((pair.beads[:, 1:] > 8) & (pair.beads[:, 1:] < 184), axis=1)
    truth = pair.beads[inside]
    spots = truth - pair.shift_at(truth)  # the beads where the moving stack shows them (its pixels)
    ids = np.arange(len(spots))
    points = viewer.add_points(spots, name="spots", scale=mov.scale, features={"id": ids}, size=3)
    widget._layers_changed()
    assert points in widget.apply_target.choices
    widget.apply_target.value = points
    widget.apply_saved()
    out = viewer.layers["spots registered"]
    np.testing.assert_allclose(out.data, map_points(reg, spots), atol=1e-9)
    np.testing.assert_array_equal(out.features["id"], ids)  # each spot keeps its row and properties
    np.testing.assert_allclose(out.scale, points.scale)
    rms = np.sqrt(np.mean((out.data - truth) ** 2, axis=0))
    assert np.all(rms < 0.25), rms  # onto the beads of the reference (3 x 3 blocks on a 1 px deformation)
    assert np.all(np.sqrt(np.mean((spots - truth) ** 2, axis=0))[1:] > 2)  # they had moved by the drift
