"""Stacks narrower than the default block (the Bintu crops: 39 x 175 x 104) register on the first click."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg._widgets import RegistrationWidget

pytestmark = pytest.mark.gui


def test_the_default_block_size_fits_a_narrow_stack(make_napari_viewer, qtbot):
    pair = cached_pair((39, 176, 104), (0.4, -1.2, 2.1), seed=71)
    viewer = make_napari_viewer()
    widget = RegistrationWidget(viewer)
    assert widget.block_size.value == 128
    ref = viewer.add_image(pair.reference, name="H11R11_beads")
    mov = viewer.add_image(pair.moving, name="H2R2_beads")
    widget.reference.value, widget.moving.value = ref, mov
    assert widget.block_size.value == 64  # the largest power of two that fits 104 px
    widget.run()
    assert widget.worker is not None, widget.last_error
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    reg = widget.result.registration
    np.testing.assert_allclose(reg.global_shift, (0.4, -1.2, 2.1), atol=0.1)
    assert reg.has_blocks and reg.params.block_size == 64
