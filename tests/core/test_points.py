"""Spot localizations of a moving round mapped into the reference frame, through the inverse field."""

import numpy as np
import pytest

from napari_fidreg.core import FidregError, Params, register
from napari_fidreg.core.points import field_at, map_points
from napari_fidreg.core.result import Block, Registration
from napari_fidreg.core.synthetic import fiducial_pair


def _rms(err):
    return np.sqrt(np.mean(np.square(err), axis=0))


@pytest.fixture(scope="module")
def deformed():
    """A deformed pair whose bead positions are known in both stacks, and its registration."""
    pair = fiducial_pair((40, 256, 256), (1.3, -4.6, 7.25), density=4e-3, deformation=(0.3, 1.0, 1.0), seed=3)
    reg = register(pair.reference, pair.moving, block_size=32, refine_blocks=True)
    inside = np.all((pair.beads[:, 1:] >= 0) & (pair.beads[:, 1:] < 256), axis=1)
    beads = pair.beads[inside]
    return reg, beads, beads - pair.shift_at(beads)  # where each bead is in the moving stack


def test_localizations_of_a_deformed_pair_land_on_the_reference(deformed):
    reg, truth, moved = deformed
    mapped = map_points(reg, moved)
    assert len(truth) > 200
    assert np.all(_rms(mapped - truth) < 0.1), _rms(mapped - truth)
    # the global shift alone leaves the deformation (0.3-1 px) in place
    assert np.all(_rms(moved + reg.global_shift - truth)[1:] > 0.3)


def test_the_mapping_inverts_the_field_the_warp_applies(deformed):
    """p - s(p) = q to 1e-6 px; the forward field s(q) would leave the field's change over the shift."""
    reg, _, moved = deformed
    p = map_points(reg, moved)
    np.testing.assert_allclose(p - field_at(reg, p), moved, atol=1e-5)
    forward = moved + field_at(reg, moved)
    assert np.abs(forward - p).max() > 0.02


def _field_registration(shifts_yx):
    """A 1 x 2 x 2 block grid of 100 px blocks with the given (dz, dy, dx) per block."""
    blocks = []
    for k, (iy, ix) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        s = tuple(float(v) for v in shifts_yx[k])
        blocks.append(Block((0, iy, ix), (0, 100 * iy, 100 * ix), (20, 100, 100), s, s, 0.9, 30.0, True))
    return Registration(
        global_shift=(0.0, 0.0, 0.0), global_score=0.9, global_sharpness=30.0,
        reference_shape=(20, 200, 200), moving_shape=(20, 200, 200), params=Params(),
        blocks=blocks, grid_shape=(1, 2, 2),
    )  # fmt: skip


def test_field_is_bilinear_between_centres_and_held_beyond():
    reg = _field_registration([(0, 0, 0), (0, 0, 2), (0, 2, 0), (0, 2, 2)])
    # block centres at 49.5 and 149.5
    got = field_at(reg, [(5, 49.5, 49.5), (5, 99.5, 99.5), (5, 149.5, 149.5), (5, 0, 0), (5, 199, 199)])
    np.testing.assert_allclose(got, [(0, 0, 0), (0, 1, 1), (0, 2, 2), (0, 0, 0), (0, 2, 2)], atol=1e-12)


def test_global_only_and_bad_points():
    reg = _field_registration([(1, 2, 3)] * 4)
    np.testing.assert_allclose(map_points(reg, [3, 4, 5]), [[4, 6, 8]])
    reg.global_shift = (0.5, 0.5, 0.5)
    np.testing.assert_allclose(map_points(reg, [[3, 4, 5]], use_blocks=False), [[3.5, 4.5, 5.5]])
    with pytest.raises(FidregError, match=r"\(n, 3\)"):
        map_points(reg, [[1, 2]])
    with pytest.raises(FidregError, match="point 1 is not finite"):
        map_points(reg, [[1, 2, 3], [np.nan, 0, 0]])
    assert map_points(reg, np.empty((0, 3))).shape == (0, 3)


def test_a_folding_field_is_refused():
    # a 100 px change over 100 px between centres: the fixed point does not exist
    reg = _field_registration([(0, 0, -150), (0, 0, 150), (0, 0, -150), (0, 0, 150)])
    with pytest.raises(FidregError, match="folds along x"):
        map_points(reg, [[5, 100, 100]])
