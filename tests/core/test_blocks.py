"""Block tiling, the verdict on block estimates (flag_outliers, judge) and the filling of rejected blocks."""

import numpy as np
import pytest

from napari_fidreg.core.blocks import axis_edges, fill_rejected, flag_outliers, judge, tile
from napari_fidreg.core.correlate import ShiftEstimate
from napari_fidreg.core.errors import FidregError
from napari_fidreg.core.measure import Measured
from napari_fidreg.core.params import Params

THRESHOLDS = {"min_score": 0.01, "min_sharpness": 8.0, "outlier_mad": 4.0, "outlier_floor": 1.0}


def verdict(shifts, scores=None, sharpness=None, valid=None, **overrides):
    """flag_outliers on n blocks, by default all measured with a strong peak."""
    shifts = np.asarray(shifts, dtype=float).reshape(-1, 3)
    n = len(shifts)
    scores = np.full(n, 0.5) if scores is None else np.asarray(scores, float)
    sharpness = np.full(n, 40.0) if sharpness is None else np.asarray(sharpness, float)
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    return flag_outliers(shifts, scores, sharpness, valid, **{**THRESHOLDS, **overrides})


# --- tiling ---------------------------------------------------------------------------------


def test_axis_edges_merges_the_remainder_into_the_last_block():
    assert axis_edges(0, 100, 30, "y") == [(0, 30), (30, 60), (60, 100)]
    assert axis_edges(10, 75, 32, "x") == [(10, 42), (42, 75)]  # start offset kept, last block 33 long


def test_axis_edges_exact_multiple_and_single_block():
    assert axis_edges(0, 96, 32, "x") == [(0, 32), (32, 64), (64, 96)]
    assert axis_edges(5, 45, 40, "z") == [(5, 45)]
    assert axis_edges(0, 63, 32, "y") == [(0, 63)]  # 31 left over: one block, no sliver


def test_axis_edges_refuses_a_block_larger_than_the_extent():
    with pytest.raises(FidregError, match="block size 101 is larger than the y extent 100"):
        axis_edges(0, 100, 101, "y")
    with pytest.raises(FidregError, match="larger than the x extent 40"):
        axis_edges(20, 60, 64, "x")


def test_tile_raster_order_grid_shape_and_exact_cover():
    region = ((0, 40), (0, 100), (10, 75))
    boxes, grid = tile(region, (40, 30, 32))
    assert grid == (1, 3, 2)
    assert len(boxes) == 6
    # x varies fastest, then y, then z
    assert [(b[1].start, b[2].start) for b in boxes] == [(0, 10), (0, 42), (30, 10), (30, 42), (60, 10), (60, 42)]
    assert boxes[-1] == (slice(0, 40), slice(60, 100), slice(42, 75))
    # the blocks cover the region exactly once
    cover = np.zeros((40, 100, 75), int)
    for b in boxes:
        cover[b] += 1
    assert np.all(cover[:, :, 10:] == 1) and np.all(cover[:, :, :10] == 0)


def test_tile_in_z_and_error_names_the_axis():
    boxes, grid = tile(((0, 60), (0, 64), (0, 64)), (30, 64, 64))
    assert grid == (2, 1, 1)
    assert [(b[0].start, b[0].stop) for b in boxes] == [(0, 30), (30, 60)]
    with pytest.raises(FidregError, match="z extent 20"):
        tile(((0, 20), (0, 64), (0, 64)), (30, 32, 32))


# --- flag_outliers --------------------------------------------------------------------------


def test_each_rejection_reason():
    shifts = [(1.0, 2.0, 3.0), (1.1, 2.0, 3.0), (1.0, 2.1, 3.0), (1.0, 2.0, 3.1), (1.0, 2.0, 3.0), (1.0, 2.0, 9.0)]
    scores = [0.5, 0.005, 0.5, 0.5, 0.5, 0.5]
    sharp = [40.0, 40.0, 5.5, 40.0, 40.0, 40.0]
    valid = [True, True, True, False, True, True]
    inlier, reasons = verdict(shifts, scores, sharp, valid)
    assert inlier.tolist() == [True, False, False, False, True, False]
    assert reasons[0] == "" and reasons[4] == ""
    assert reasons[1] == "low score 0.005 < 0.01"
    assert reasons[2] == "flat peak: sharpness 5.5 < 8.0"
    assert reasons[3].startswith("peak at the edge of the search range")
    assert reasons[5] == "shift far from the other blocks' consensus"


def test_a_rejection_reason_never_rounds_a_value_up_to_its_threshold():
    """0.0097 under 0.01 read "low score 0.010 < 0.01" (a user's report): as many decimals as it takes."""
    shifts = [(1.0, 2.0, 3.0)] * 5
    inlier, reasons = verdict(shifts, [0.5, 0.0097, 0.5, 0.5, 0.5], [40.0, 40.0, 7.96, 40.0, 40.0], [True] * 5)
    assert reasons[1] == "low score 0.0097 < 0.01"
    assert reasons[2] == "flat peak: sharpness 7.96 < 8.0"


def test_not_measured_takes_precedence_over_a_weak_peak():
    inlier, reasons = verdict([(0, 0, 0)], scores=[0.0], sharpness=[0.0], valid=[False])
    assert not inlier[0] and reasons[0].startswith("not measured")


def test_a_weak_peak_at_the_search_limit_is_called_weak():
    """A block without beads (a user's trial: sharpness 5.4) has its noise peak on the search
    range's edge; "not measured (outside the moving stack ...)" sent them looking for a cause
    that was not there."""
    shifts = [(1.0, 2.0, 3.0)] * 4 + [(1.0, 2.0, 15.0), (1.0, 2.0, 15.0)]
    scores = [0.5, 0.5, 0.5, 0.5, 0.05, 0.004]
    sharp = [40.0, 40.0, 40.0, 40.0, 5.4, 30.0]
    inlier, reasons = verdict(shifts, scores, sharp, [True] * 4 + [False, False])
    assert inlier.tolist() == [True] * 4 + [False, False]
    assert reasons[4] == "flat peak: sharpness 5.4 < 8.0"
    assert reasons[5] == "low score 0.004 < 0.01"


def test_outlier_on_a_single_axis_is_rejected():
    shifts = np.zeros((5, 3))
    shifts[:, 2] = [0.0, 0.05, -0.05, 0.02, 0.0]
    shifts[3, 0] = 1.5  # z only
    inlier, reasons = verdict(shifts)
    assert inlier.tolist() == [True, True, True, False, True]
    assert "consensus" in reasons[3]


def test_outlier_limit_scales_with_the_blocks_scatter():
    """4 robust standard deviations: a 3 px departure is an outlier among blocks that agree to
    0.1 px, but not among blocks spread over -2..2 px (MAD 1.5 px, robust std 2.2 px)."""
    tight = [(0, 0, x) for x in (-0.1, -0.05, 0.0, 0.05, 0.1, 3.0)]
    inlier, _ = verdict(tight, outlier_floor=0.0)
    assert inlier.tolist() == [True] * 5 + [False]

    loose = [(0, 0, x) for x in (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)]
    inlier, _ = verdict(loose, outlier_floor=0.0)
    assert inlier.all()
    # with a strict rule (1 robust std = 2.22 px around the median 0.5) both ends go
    inlier, _ = verdict(loose, outlier_mad=1.0, outlier_floor=0.0)
    assert inlier.tolist() == [False, True, True, True, True, False]


def test_outlier_floor_keeps_a_smooth_deformation():
    """Blocks that follow a smooth 0.2 px ramp have a tiny MAD (0.075 px): without the floor a
    block 0.78 px away would be called an outlier; the 1 px floor keeps it."""
    ramp = [(0, 0.5 * x, x) for x in (0.0, 0.05, 0.1, 0.15, 0.2, 0.9)]
    inlier, reasons = verdict(ramp, outlier_floor=0.0)
    assert not inlier[5] and "consensus" in reasons[5]
    inlier, reasons = verdict(ramp, outlier_floor=1.0)
    assert inlier.all() and reasons == [""] * 6


def test_outlier_floor_is_the_limit_when_blocks_agree_exactly():
    base = [(2.0, -3.0, 4.0)] * 5
    inlier, _ = verdict([*base, (2.0, -3.0, 4.99)])
    assert inlier.all()
    inlier, _ = verdict([*base, (2.0, -3.0, 5.01)])
    assert inlier.tolist() == [True] * 5 + [False]


def test_no_consensus_test_with_fewer_than_three_good_blocks():
    # two good blocks 10 px apart are both kept (no majority to call one an outlier)
    inlier, _ = verdict([(0, 0, 0), (0, 0, 10), (0, 0, 5)], scores=[0.5, 0.5, 0.001])
    assert inlier.tolist() == [True, True, False]


def test_weak_blocks_do_not_enter_the_consensus():
    """Five weak blocks agreeing on a wrong shift do not outvote three good ones."""
    shifts = [(1, 1, 1)] * 3 + [(1, 1, 20)] * 5
    scores = [0.5] * 3 + [0.002] * 5
    inlier, reasons = verdict(shifts, scores)
    assert inlier.tolist() == [True] * 3 + [False] * 5
    assert all(r.startswith("low score") for r in reasons[3:])


def test_inputs_are_not_modified():
    valid = np.array([True, True, True, True])
    shifts = np.array([(0, 0, 0), (0, 0, 0.1), (0, 0, -0.1), (0, 0, 5.0)])
    inlier, _ = verdict(shifts, valid=valid)
    assert not inlier[3]
    assert valid.all()
    assert shifts[3, 2] == 5.0


# --- fill_rejected --------------------------------------------------------------------------


def test_fill_from_the_nearest_ring_only():
    grid = (1, 3, 3)
    shifts = np.arange(27, dtype=float).reshape(9, 3)
    inlier = np.ones(9, bool)
    inlier[0] = False  # corner: nearest inliers (0,0,1), (0,1,0), (0,1,1) = flat 1, 3, 4
    out = fill_rejected(shifts, inlier, grid, fallback=np.zeros(3))
    np.testing.assert_array_equal(out[0], np.median(shifts[[1, 3, 4]], axis=0))
    np.testing.assert_array_equal(out[1:], shifts[1:])  # inliers keep theirs
    assert shifts[0, 0] == 0.0  # input untouched


def test_fill_centre_is_the_median_of_its_eight_neighbours():
    grid = (1, 3, 3)
    rng = np.random.default_rng(0)
    shifts = rng.normal(0, 1, (9, 3))
    shifts[4] = (50.0, 50.0, 50.0)  # a wild measurement, rejected
    inlier = np.ones(9, bool)
    inlier[4] = False
    out = fill_rejected(shifts, inlier, grid, fallback=np.zeros(3))
    np.testing.assert_allclose(out[4], np.median(np.delete(shifts, 4, axis=0), axis=0))


def test_fill_widens_the_ring_until_it_finds_inliers():
    grid = (1, 1, 5)
    shifts = np.array([(9.0, 9, 9), (8, 8, 8), (7, 7, 7), (1, 2, 3), (5, 6, 7)])
    inlier = np.array([False, False, False, True, True])
    out = fill_rejected(shifts, inlier, grid, fallback=np.zeros(3))
    # block 2 is next to block 3; blocks 0 and 1 also have block 3 as their nearest inlier
    np.testing.assert_array_equal(out[:3], [(1, 2, 3)] * 3)
    np.testing.assert_array_equal(out[3:], shifts[3:])


def test_fill_uses_chebyshev_distance_in_3d():
    grid = (2, 2, 2)
    shifts = np.zeros((8, 3))
    inlier = np.zeros(8, bool)
    inlier[7] = True  # (1, 1, 1): diagonal neighbour of (0, 0, 0), at Chebyshev distance 1
    shifts[7] = (0.5, -1.5, 2.5)
    out = fill_rejected(shifts, inlier, grid, fallback=np.zeros(3))
    np.testing.assert_array_equal(out, np.tile(shifts[7], (8, 1)))


def test_fill_falls_back_when_no_block_is_an_inlier():
    shifts = np.arange(12, dtype=float).reshape(4, 3)
    out = fill_rejected(shifts, np.zeros(4, bool), (1, 2, 2), fallback=np.array([1.25, -2.5, 3.75]))
    np.testing.assert_array_equal(out, np.tile([1.25, -2.5, 3.75], (4, 1)))
    assert shifts[0, 1] == 1.0


# --- judge ----------------------------------------------------------------------------------


def measured(shift, score=0.5, sharpness=40.0, valid=True):
    return Measured(ShiftEstimate(np.asarray(shift, float), score, sharpness, not valid), valid)


def test_judge_arrays_and_verdict():
    ms = [
        measured((1.0, 2.0, 3.0), 0.6, 30.0),
        measured((1.1, 2.1, 3.1), 0.4, 25.0),
        measured((0.9, 1.9, 2.9), 0.5, 35.0),
        measured((1.0, 2.0, 3.0), 0.005, 30.0),
        measured((1.0, 2.0, 8.0), 0.5, 30.0, valid=False),
        measured((1.0, 2.0, 7.0), 0.5, 30.0),
    ]
    j = judge(ms, Params())
    assert j.shifts.shape == (6, 3) and j.shifts.dtype == np.float64
    np.testing.assert_array_equal(j.shifts[1], (1.1, 2.1, 3.1))
    np.testing.assert_array_equal(j.scores, [0.6, 0.4, 0.5, 0.005, 0.5, 0.5])
    np.testing.assert_array_equal(j.sharpness, [30.0, 25.0, 35.0, 30.0, 30.0, 30.0])
    assert j.valid.tolist() == [True, True, True, True, False, True]
    assert j.inlier.tolist() == [True, True, True, False, False, False]
    assert j.reasons[3].startswith("low score")
    assert j.reasons[4].startswith("peak at the edge of the search range")
    assert "consensus" in j.reasons[5]


def test_judge_uses_the_params_thresholds():
    ms = [measured((0, 0, x), 0.5, s) for x, s in ((0.0, 30.0), (0.1, 12.0), (0.2, 30.0), (0.3, 30.0))]
    assert judge(ms, Params()).inlier.all()
    j = judge(ms, Params(min_sharpness=20.0))
    assert j.inlier.tolist() == [True, False, True, True]
    assert j.reasons[1] == "flat peak: sharpness 12.0 < 20.0"
    # no floor and half a robust std (0.074 px around the median 0.15): the two ends go
    j = judge(ms, Params(outlier_floor=0.0, outlier_mad=0.5))
    assert j.inlier.tolist() == [False, True, True, False]


def test_judge_of_no_blocks():
    j = judge([], Params())
    assert j.shifts.shape == (0, 3)
    assert j.inlier.shape == (0,) and j.reasons == []


def test_a_block_that_measuring_skips_is_not_measured_from_judge_to_the_verdict_read_back():
    """The one path where a block is not measured at all: too little of it inside the moving
    stack. Its reason, in judge (which knows at_limit) and from its stored fields (which don't)."""
    from conftest import cached_pair
    from napari_fidreg.core.block_grid import grid_blocks
    from napari_fidreg.core.measure import Pair, measure_block

    p = cached_pair((20, 64, 128), (0.0, 0.0, 0.0), seed=3)
    pair = Pair(p.reference, p.moving, None, Params())
    boxes, grid = tile(((0, 20), (0, 64), (0, 128)), (20, 64, 64))
    offset = np.array([0, 0, -56])  # the second block keeps 8 of its 64 columns inside the moving stack
    ms = [measure_block(pair, box, offset, (2.0, 2.0, 2.0)) for box in boxes]
    assert not ms[1].valid and not ms[1].estimate.at_limit  # (block 0 is measured, wrongly placed: at the limit)
    j = judge(ms, Params())
    assert j.reasons[1].startswith("not measured: under 16 px")
    blocks, _ = grid_blocks(boxes, grid, ms, (0.0, 0.0, 0.0), Params())
    assert blocks[1].measured_shift is None and blocks[1].reason == j.reasons[1]
    # read back: no at_limit kept, told by its score and sharpness 0
    _, reasons = verdict(
        [b.measured_shift or b.shift for b in blocks], [b.score for b in blocks],
        [b.sharpness for b in blocks], [b.measured_shift is not None for b in blocks],
    )  # fmt: skip
    assert reasons[1] == j.reasons[1]


def test_a_block_with_a_non_finite_estimate_is_rejected():
    inlier, reasons = verdict([(1.0, 2.0, 3.0)] * 4 + [(np.nan, 2.0, 3.0)], scores=[0.5, 0.5, 0.5, np.nan, 0.5])
    assert inlier.tolist() == [True, True, True, False, False]
    assert reasons[3] == reasons[4] == "no finite estimate (NaN or infinite)"
