"""The global shift at full resolution: refine_global_shift on candidate blocks, and combine()."""

import numpy as np
import pytest

from conftest import cached_pair, run
from napari_fidreg.core.blocks import tile
from napari_fidreg.core.coarse import camera_hot_pixels
from napari_fidreg.core.correlate import ShiftEstimate
from napari_fidreg.core.global_shift import STAGE, combine, refine_global_shift
from napari_fidreg.core.measure import Measured, Pair
from napari_fidreg.core.params import Params
from napari_fidreg.core.progress import Ticker

SHAPE = (32, 192, 192)
MARGIN = (4.0, 4.0, 4.0)


def quadrants(shape, size=96):
    boxes, _ = tile(tuple((0, n) for n in shape), (shape[0], size, size))
    return boxes


def fiducial_job(shift, seed, params=None):
    p = cached_pair(SHAPE, shift, seed=seed)
    hot = camera_hot_pixels((p.reference.min(axis=0), p.moving.min(axis=0)), 8.0)
    return p, Pair(p.reference, p.moving, hot, params or Params())


def measured(shift, score=0.5, sharpness=40.0, valid=True):
    return Measured(ShiftEstimate(np.asarray(shift, float), score, sharpness, not valid), valid)


# --- refine_global_shift --------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed,shift", [(0, (1.4, -3.3, 5.6)), (2, (-2.35, 4.6, -7.1)), (3, (0.45, 0.12, -0.38)), (4, (1.3, -4.6, 7.25))]
)
def test_refined_global_shift_within_002_px(seed, shift):
    p, pair = fiducial_job(shift, seed)
    cands = quadrants(SHAPE)
    ticks, g = run(refine_global_shift(pair, cands, np.rint(shift).astype(int), MARGIN, Ticker(4), workers=2))
    assert g.combined is not None and g.notes == []
    err = np.abs(g.combined.shift - shift)
    assert err.max() <= 0.02, err
    # four confident blocks: a standard error per axis (0.001-0.02 px here)
    assert g.combined.uncertainty.shape == (3,)
    assert np.all(g.combined.uncertainty > 0) and np.all(g.combined.uncertainty < 0.05)
    assert g.combined.score > 0.3 and g.combined.sharpness > 40
    # sharp bead peaks: no finer-background retry, the params are those given
    assert g.params == pair.params and len(g.measured) == 4 and all(m.valid for m in g.measured)
    assert [(t.stage, t.done, t.total) for t in ticks] == [(STAGE, i, 4) for i in range(1, 5)]


def test_an_integer_offset_a_few_px_off_gives_the_same_shift():
    shift = (1.4, -3.3, 5.6)
    p, pair = fiducial_job(shift, 0)
    _, g = run(refine_global_shift(pair, quadrants(SHAPE), (0, -1, 3), MARGIN, Ticker(4), workers=2))
    assert np.abs(g.combined.shift - shift).max() <= 0.02


def test_pure_noise_gives_no_combined_shift_and_says_so():
    rng = np.random.default_rng(0)
    shape = (24, 128, 128)
    ref = rng.poisson(300, shape).astype(np.uint16)
    mov = rng.poisson(300, shape).astype(np.uint16)
    cands = quadrants(shape, 64)
    ticker = Ticker(len(cands))
    ticks, g = run(refine_global_shift(Pair(ref, mov, None, Params()), cands, (0, 0, 0), MARGIN, ticker, workers=2))
    assert g.combined is None
    assert len(g.notes) == 1
    assert g.notes[0].startswith("no block gave a confident correlation peak")
    # the finer background (sigma 4) was tried as well, and found nothing either
    assert "background_sigma=8 or 4" in g.notes[0]
    assert g.params.background_sigma == 8.0
    assert all(m.estimate.sharpness < 8.0 for m in g.measured)
    # the retry grew the total: ticks are monotonic and end at the (final) total
    done = [t.done for t in ticks]
    totals = [t.total for t in ticks]
    assert done == list(range(1, 9))
    assert totals == [4] * 4 + [8] * 4
    assert ticks[-1].done == ticks[-1].total == ticker.total == ticker.done == 8
    assert ticks[-1].finished


def test_pure_noise_without_background_has_no_retry():
    rng = np.random.default_rng(1)
    shape = (24, 128, 128)
    ref = rng.poisson(300, shape).astype(np.float32)
    mov = rng.poisson(300, shape).astype(np.float32)
    ticks, g = run(
        refine_global_shift(
            Pair(ref, mov, None, Params(background=False)),
            quadrants(shape, 64),
            (0, 0, 0),
            MARGIN,
            Ticker(4),
            workers=1,
        )
    )
    assert g.combined is None
    assert g.notes[0].startswith("no block gave a confident correlation peak")
    assert "with no background subtraction:" in g.notes[0]  # nothing was retried, no sigma to name
    assert [t.done for t in ticks] == [1, 2, 3, 4] and ticks[-1].total == 4


def test_ticks_continue_a_shared_ticker():
    """The registration shares one Ticker between the global step and the block grid."""
    p, pair = fiducial_job((1.4, -3.3, 5.6), 0)
    ticker = Ticker(4 + 9)
    ticks, _ = run(refine_global_shift(pair, quadrants(SHAPE), (1, -3, 6), MARGIN, ticker, workers=2))
    assert [(t.done, t.total) for t in ticks] == [(i, 13) for i in range(1, 5)]
    assert ticker.done == 4


# --- combine --------------------------------------------------------------------------------


def test_combine_is_score_weighted_over_the_confident_blocks():
    good = [((1.0, 2.0, 3.0), 0.2, 30.0), ((1.2, 2.4, 2.6), 0.6, 50.0), ((1.1, 2.2, 2.8), 0.2, 20.0)]
    ms = [measured(s, sc, sh) for s, sc, sh in good]
    ms += [measured((9, 9, 9), 0.005, 40.0), measured((1, 2, 3), 0.5, 5.0), measured((1, 2, 3), valid=False)]
    c, notes = combine(ms, Params())
    shifts = np.array([g[0] for g in good])
    np.testing.assert_allclose(c.shift, (0.2 * shifts[0] + 0.6 * shifts[1] + 0.2 * shifts[2]) / 1.0)
    np.testing.assert_allclose(c.shift, (1.14, 2.28, 2.72))
    assert c.score == pytest.approx(0.2)  # median of the three confident blocks'
    assert c.sharpness == pytest.approx(30.0)
    np.testing.assert_allclose(c.uncertainty, shifts.std(axis=0, ddof=1) / np.sqrt(3))
    np.testing.assert_allclose(c.uncertainty, np.array([0.1, 0.2, 0.2]) / np.sqrt(3))
    assert notes == []


def test_combine_of_one_block_has_no_uncertainty():
    c, notes = combine([measured((0.5, -1.5, 2.5), 0.4, 30.0), measured((0, 0, 0), 0.001, 30.0)], Params())
    np.testing.assert_allclose(c.shift, (0.5, -1.5, 2.5), rtol=1e-12)
    assert c.uncertainty is None and c.score == 0.4 and notes == []


def test_combine_notes_blocks_that_disagree():
    """Blocks spread over 4 px (std 2) agree with no consensus outlier, but the spread is a
    deforming sample's: the note says to use block shifts."""
    ms = [measured((0, 0, x), 0.5, 30.0) for x in (0.0, 2.0, 4.0)]
    c, notes = combine(ms, Params())
    np.testing.assert_allclose(c.shift, (0, 0, 2.0))
    np.testing.assert_allclose(c.uncertainty, (0, 0, 2.0 / np.sqrt(3)))
    assert len(notes) == 1 and "disagree by up to 2.00 px" in notes[0]


def test_combine_leaves_out_consensus_outliers():
    ms = [measured((1, 2, 3 + d), 0.5, 30.0) for d in (0.0, 0.02, -0.02, 0.01)] + [measured((1, 2, 8), 0.9, 60.0)]
    c, _ = combine(ms, Params())
    np.testing.assert_allclose(c.shift, (1, 2, 3.0025))


def test_combine_with_no_confident_block():
    assert combine([measured((1, 2, 3), 0.001, 30.0), measured((1, 2, 3), 0.5, 3.0)], Params()) == (None, [])
    assert combine([], Params()) == (None, [])


def test_combined_shift_lies_between_the_blocks_shifts_whatever_min_score():
    ms = [measured((1.0, 2.0, 3.0), 0.5, 30.0), measured((1.2, 2.2, 3.2), -0.3, 30.0)]
    c, _ = combine(ms, Params(min_score=-1.0))
    assert np.all(c.shift >= np.array([1.0, 2.0, 3.0]) - 1e-9)  # was 0.7, 1.7, 2.7 with raw-score weights
    assert np.all(c.shift <= np.array([1.2, 2.2, 3.2]) + 1e-9)
