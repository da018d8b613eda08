"""Shifts of the user's block grid: measure_grid around the global shift, reuse of blocks the
global step already measured, and grid_blocks' verdict and filling."""

import functools

import numpy as np
import pytest

from conftest import cached_pair, run
from napari_fidreg.core.block_grid import box_key, grid_blocks, measure_grid
from napari_fidreg.core.blocks import tile
from napari_fidreg.core.coarse import camera_hot_pixels
from napari_fidreg.core.correlate import ShiftEstimate
from napari_fidreg.core.measure import Measured, Pair, measure_block
from napari_fidreg.core.params import Params
from napari_fidreg.core.progress import Ticker
from napari_fidreg.core.synthetic import fiducial_pair

SHAPE = (32, 256, 256)
SHIFT = (1.2, -5.3, 8.6)
DEFORMATION = (0.5, 1.5, 1.5)
BLOCK = 64


@functools.lru_cache(maxsize=1)
def deformed_pair():
    """Dense beads (3 per 1000 px, ~12 per 64 px block) under a smooth deformation of 1.5 px."""
    p = fiducial_pair(SHAPE, SHIFT, density=3e-3, deformation=DEFORMATION, seed=3)
    p.reference.setflags(write=False)
    p.moving.setflags(write=False)
    return p


def job(p, params=None):
    hot = camera_hot_pixels((p.reference.min(axis=0), p.moving.min(axis=0)), 8.0)
    boxes, grid = tile(tuple((0, n) for n in SHAPE), (SHAPE[0], BLOCK, BLOCK))
    return Pair(p.reference, p.moving, hot, params or Params()), boxes, grid


def measured(shift, score=0.5, sharpness=40.0, valid=True):
    return Measured(ShiftEstimate(np.asarray(shift, float), score, sharpness, not valid), valid)


# --- measure_grid ---------------------------------------------------------------------------


def test_block_shifts_follow_a_smooth_deformation():
    p = deformed_pair()
    pair, boxes, grid = job(p)
    assert grid == (1, 4, 4)
    ticks, (blocks, consensus) = run(measure_grid(pair, boxes, grid, p.shift, {}, Ticker(16), workers=2))
    assert [(t.stage, t.done, t.total) for t in ticks] == [("blocks", i, 16) for i in range(1, 17)]
    assert len(blocks) == 16 and all(b.inlier and b.reason == "" for b in blocks)

    truth = np.array([p.block_truth(b.origin, b.size) for b in blocks])
    got = np.array([b.measured_shift for b in blocks])
    err = got - truth
    rms = np.sqrt(np.mean(np.square(err), axis=0))
    assert np.all(rms <= 0.08), rms  # 0.025-0.036 px here
    assert np.abs(err).max() <= 0.15, err  # 0.10 px here
    # the deformation the blocks resolve is ~1 px rms in y and x: ten times their error and more
    deformation_rms = np.sqrt(np.mean(np.square(truth - p.shift), axis=0))
    assert np.all(deformation_rms[1:] > 0.8) and np.all(rms[1:] < 0.1 * deformation_rms[1:])

    np.testing.assert_array_equal([b.shift for b in blocks], got)  # inliers keep their own shift
    np.testing.assert_allclose(consensus, np.median(got, axis=0))
    assert [b.index for b in blocks][:5] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 1, 0)]
    assert blocks[5].origin == (0, 64, 64) and blocks[5].size == (32, 64, 64)


def test_a_known_block_inside_the_search_range_is_reused():
    """The global step measured block 0 with a refinement pass; the grid (refine_blocks off)
    takes that estimate as it is, and counts the block done at once."""
    p = deformed_pair()
    pair, boxes, grid = job(p)
    offset = np.rint(p.shift).astype(int)
    local = (pair.params.max_local_shift,) * 3
    refined = measure_block(pair, boxes[0], offset, local, refine=1)
    plain = measure_block(pair, boxes[0], offset, local, refine=0)
    assert np.any(refined.estimate.shift != plain.estimate.shift)

    ticker = Ticker(16)
    ticks, (blocks, _) = run(measure_grid(pair, boxes, grid, p.shift, {box_key(boxes[0]): refined}, ticker, workers=2))
    assert blocks[0].measured_shift == tuple(refined.estimate.shift)
    assert blocks[0].score == refined.estimate.score
    assert blocks[1].measured_shift == tuple(measure_block(pair, boxes[1], offset, local).estimate.shift)
    # 15 blocks measured; the reused one was counted up front: the first tick already says 2
    assert [t.done for t in ticks] == list(range(2, 17))
    assert ticker.done == ticker.total == 16


@pytest.mark.parametrize(
    "lag,valid,reused",
    [
        ((0.0, 0.0, 4.0), True, True),
        ((-4.4, 0.0, 0.0), True, True),
        ((0.0, 0.0, 5.0), True, False),  # max_local_shift 5: a peak at 5 would sit on the range's edge
        ((-5.0, 0.0, 0.0), True, False),
        ((0.5, -0.5, 0.5), False, False),
    ],
    ids=["x-inside", "z-inside", "x-at-reach", "z-at-reach", "not-valid"],
)
def test_which_known_blocks_are_reused(lag, valid, reused):
    """Only a valid estimate whose integer lag from the grid's offset is strictly inside
    +-max_local_shift is reused; any other is measured again."""
    p = deformed_pair()
    pair, boxes, grid = job(p)
    offset = np.rint(p.shift).astype(int)
    known_estimate = measured(offset + np.array(lag), 0.77, 55.0, valid=valid)
    elsewhere = (slice(0, 32), slice(0, 100), slice(0, 100))  # not a block of this grid: ignored
    known = {box_key(boxes[5]): known_estimate, box_key(elsewhere): measured(offset)}
    ticks, (blocks, _) = run(measure_grid(pair, boxes, grid, p.shift, known, Ticker(16), workers=2))
    assert len(ticks) == 16 - reused and ticks[-1].done == 16
    if reused:
        assert blocks[5].score == 0.77
        assert blocks[5].measured_shift == tuple(known_estimate.estimate.shift)
    else:
        assert blocks[5].score != 0.77
        truth = p.block_truth(blocks[5].origin, blocks[5].size)
        assert np.abs(np.subtract(blocks[5].measured_shift, truth)).max() <= 0.15


def test_rejected_block_without_fiducials_is_filled_from_its_neighbours():
    """A 64 x 64 corner without beads: measured, flagged (flat peak) and given the median shift of
    its three grid neighbours."""
    p = cached_pair(SHAPE, SHIFT, seed=4, deformation=DEFORMATION, empty=True)
    pair, boxes, grid = job(p)
    assert p.block_truth((0, 0, 0), (32, 64, 64)) is None
    _, (blocks, consensus) = run(measure_grid(pair, boxes, grid, p.shift, {}, Ticker(16), workers=2))
    corner = blocks[0]
    assert not corner.inlier
    assert corner.reason.startswith("flat peak") and corner.sharpness < 8.0
    assert corner.measured_shift is not None  # measured, but not trusted
    neighbours = [b for b in blocks if b.index in ((0, 0, 1), (0, 1, 0), (0, 1, 1))]
    assert all(b.inlier for b in neighbours)
    np.testing.assert_allclose(corner.shift, np.median([b.measured_shift for b in neighbours], axis=0))
    assert all(b.inlier for b in blocks[1:])
    np.testing.assert_allclose(consensus, np.median([b.measured_shift for b in blocks[1:]], axis=0))


# --- grid_blocks ----------------------------------------------------------------------------


def test_grid_blocks_records_verdicts_and_fills_in_3d():
    boxes, grid = tile(((0, 40), (0, 64), (0, 128)), (20, 64, 64))
    assert grid == (2, 1, 2)
    ms = [
        measured((1.0, 2.0, 3.0), 0.5, 30.0),
        measured((7.0, 7.0, 7.0), 0.5, 30.0, valid=False),  # index (0, 0, 1)
        measured((1.2, 2.2, 3.2), 0.5, 30.0),
        measured((1.1, 2.1, 3.1), 0.003, 30.0),  # index (1, 0, 1): low score
    ]
    blocks, consensus = grid_blocks(boxes, grid, ms, (0.0, 0.0, 0.0), Params())
    assert [b.index for b in blocks] == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1)]
    assert [b.origin for b in blocks] == [(0, 0, 0), (0, 0, 64), (20, 0, 0), (20, 0, 64)]
    assert all(b.size == (20, 64, 64) for b in blocks)
    assert [b.inlier for b in blocks] == [True, False, True, False]
    assert blocks[1].measured_shift is None and blocks[1].reason.startswith("peak at the edge")
    assert blocks[3].measured_shift == (1.1, 2.1, 3.1) and blocks[3].reason.startswith("low score")
    # both rejected blocks touch both inliers (Chebyshev distance 1): their median
    np.testing.assert_allclose(blocks[1].shift, (1.1, 2.1, 3.1))
    np.testing.assert_allclose(blocks[3].shift, (1.1, 2.1, 3.1))
    assert blocks[0].shift == (1.0, 2.0, 3.0) and blocks[0].score == 0.5 and blocks[0].sharpness == 30.0
    np.testing.assert_allclose(consensus, (1.1, 2.1, 3.1))
    assert all(isinstance(v, float) for b in blocks for v in b.shift)


def test_grid_blocks_without_any_inlier_use_the_global_shift():
    boxes, grid = tile(((0, 20), (0, 64), (0, 128)), (20, 64, 64))
    ms = [measured((3, 3, 3), 0.001), measured((4, 4, 4), 0.5, 2.0)]
    blocks, consensus = grid_blocks(boxes, grid, ms, (0.5, -1.5, 2.25), Params())
    assert consensus is None
    assert [b.shift for b in blocks] == [(0.5, -1.5, 2.25)] * 2
    assert [b.measured_shift for b in blocks] == [(3.0, 3.0, 3.0), (4.0, 4.0, 4.0)]
    assert not any(b.inlier for b in blocks)


def test_a_grid_made_only_of_known_blocks_still_ends_at_total():
    p = deformed_pair()
    pair, boxes, grid = job(p)
    offset = np.rint(p.shift).astype(int)
    known = {box_key(b): measured(offset + 0.25) for b in boxes}
    ticker = Ticker(8 + 16)
    ticker.done = 8  # the global step's ticks
    ticks, (blocks, _) = run(measure_grid(pair, boxes, grid, p.shift, known, ticker, workers=2))
    assert ticker.done == ticker.total  # counted...
    assert ticks and ticks[-1].done == ticks[-1].total  # ...but never reported


# --- rejection by hand ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def registered_with_an_empty_block():
    """A real registration of 16 blocks, the top-left one without beads (rejected by the engine)."""
    from napari_fidreg.core import register

    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    return register(p.reference, p.moving, block_size=64)


def test_the_automatic_verdict_is_what_the_registration_decided():
    from napari_fidreg.core.block_grid import automatic_verdict

    reg = registered_with_an_empty_block()
    assert not reg.blocks[0].inlier  # the empty block
    inlier, reasons = automatic_verdict(reg)
    assert list(inlier) == [b.inlier for b in reg.blocks]
    assert reasons == [b.reason for b in reg.blocks]


def test_reject_by_hand_refills_from_the_remaining_inliers_without_measuring():
    from napari_fidreg.core.block_grid import BY_HAND, reject_blocks
    from napari_fidreg.core.blocks import fill_rejected

    reg = registered_with_an_empty_block()
    before = [b.shift for b in reg.blocks]
    out = reject_blocks(reg, [5, 0])  # 0 was rejected already: it keeps its own reason
    assert [b.shift for b in reg.blocks] == before  # the input is not modified
    assert not out.blocks[5].inlier and out.blocks[5].reason == BY_HAND
    assert out.blocks[0].reason == reg.blocks[0].reason
    assert out.blocks[5].measured_shift == reg.blocks[5].measured_shift  # kept for restoring
    # the used shifts are fill_rejected's, from the blocks still kept
    measured = np.array([b.measured_shift or b.shift for b in reg.blocks])
    keep = np.array([b.inlier for b in out.blocks])
    expected = fill_rejected(measured, keep, reg.grid_shape, np.asarray(reg.global_shift))
    np.testing.assert_allclose([b.shift for b in out.blocks], expected)
    assert out.blocks[5].shift != reg.blocks[5].shift  # block 5 now takes its neighbours' median
    np.testing.assert_allclose(out.consensus_shift, np.median(measured[keep], axis=0))
    assert out.global_shift == reg.global_shift and out.created == reg.created
    assert "2 of 16 blocks rejected and filled from neighbours (1 by hand)" in out.warnings
    assert sum("blocks rejected" in w for w in out.warnings) == 1


def test_with_every_block_rejected_the_note_says_the_global_shift_is_used():
    """'16 of 16 blocks rejected and filled from neighbours' named neighbours that were not there."""
    from napari_fidreg.core.block_grid import reject_blocks, restore_blocks

    reg = registered_with_an_empty_block()
    out = reject_blocks(reg, range(16))
    assert all(b.shift == reg.global_shift for b in out.blocks) and out.consensus_shift is None
    notes = [w for w in out.warnings if "blocks rejected" in w]
    assert notes == ["all 16 blocks rejected (15 by hand): the global shift is used throughout"]
    back = restore_blocks(out, range(16))  # and the count as it was
    assert [w for w in back.warnings if "blocks rejected" in w] == [
        "1 of 16 blocks rejected and filled from neighbours"
    ]


def test_restore_brings_back_the_measured_shift_and_the_automatic_verdict():
    from napari_fidreg.core.block_grid import reject_blocks, restore_blocks

    reg = registered_with_an_empty_block()
    out = restore_blocks(reject_blocks(reg, [3, 5, 9]), [5, 9, 0])
    assert [b.inlier for b in out.blocks] == [b.inlier and i != 3 for i, b in enumerate(reg.blocks)]
    for i in (5, 9):
        assert out.blocks[i].shift == reg.blocks[i].shift and out.blocks[i].reason == ""
    assert out.blocks[0].reason == reg.blocks[0].reason  # not rejected by hand: left alone
    back = restore_blocks(out, [3])
    assert [(b.shift, b.inlier, b.reason) for b in back.blocks] == [(b.shift, b.inlier, b.reason) for b in reg.blocks]
    assert back.warnings == reg.warnings
    np.testing.assert_allclose(back.consensus_shift, reg.consensus_shift)


def test_the_hand_rejection_is_saved_in_the_json_and_the_csv(tmp_path):
    from napari_fidreg.core import Registration
    from napari_fidreg.core.block_grid import BY_HAND, reject_blocks, restore_blocks

    out = reject_blocks(registered_with_an_empty_block(), [6])
    back = Registration.load(out.save(tmp_path / "r.shifts.json"))
    assert back.blocks[6].reason == BY_HAND and not back.blocks[6].inlier
    row = out.blocks_csv().splitlines()[1 + 6]
    assert row.endswith(f",0,{BY_HAND}")
    # restoring after a round trip through the file still finds the engine's verdict
    assert restore_blocks(back, [6]).blocks[6].inlier


def test_rejecting_needs_blocks_and_valid_positions():
    from napari_fidreg.core import register
    from napari_fidreg.core.block_grid import reject_blocks
    from napari_fidreg.core.errors import FidregError

    with pytest.raises(FidregError, match="no block at position 16"):
        reject_blocks(registered_with_an_empty_block(), [16])
    p = cached_pair((32, 256, 256), (1.2, -3.4, 5.6), seed=2, empty=True)
    with pytest.raises(FidregError, match="no blocks"):
        reject_blocks(register(p.reference, p.moving), [0])
