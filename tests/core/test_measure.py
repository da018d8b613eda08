"""One block pair measured at full resolution (measure_block), many on threads (measure_many),
and the clipping of a displaced block to the moving stack (overlap)."""

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.core.coarse import camera_hot_pixels
from napari_fidreg.core.measure import Pair, measure_block, measure_many, overlap
from napari_fidreg.core.params import MIN_BLOCK_YX, Params

SHAPE = (32, 128, 128)
SHIFT = (1.4, -3.3, 5.6)
WHOLE = (slice(0, 32), slice(0, 128), slice(0, 128))


def make_pair(shift=SHIFT, seed=0, params=None):
    p = cached_pair(SHAPE, shift, seed=seed)
    hot = camera_hot_pixels((p.reference.min(axis=0), p.moving.min(axis=0)), 8.0)
    return p, Pair(p.reference, p.moving, hot, params or Params())


def spans(slices):
    return [(s.start, s.stop) for s in slices]


# --- overlap --------------------------------------------------------------------------------


def test_overlap_positive_and_negative_offsets():
    box = (slice(0, 10), slice(0, 50), slice(20, 80))
    ref_sl, mov_sl = overlap(box, (2, -5, 15), (10, 60, 90))
    # z: moving plane m holds reference plane m + 2: reference planes 0, 1 have no moving data
    assert spans(ref_sl) == [(2, 10), (0, 50), (20, 80)]
    assert spans(mov_sl) == [(0, 8), (5, 55), (5, 65)]

    ref_sl, mov_sl = overlap(box, (-3, 12, -15), (10, 60, 90))
    assert spans(ref_sl) == [(0, 7), (12, 50), (20, 75)]
    assert spans(mov_sl) == [(3, 10), (0, 38), (35, 90)]


def test_overlap_zero_offset_clips_to_a_smaller_moving_stack():
    box = (slice(0, 10), slice(32, 64), slice(0, 64))
    ref_sl, mov_sl = overlap(box, (0, 0, 0), (8, 60, 64))
    assert spans(ref_sl) == spans(mov_sl) == [(0, 8), (32, 60), (0, 64)]


def test_overlap_selects_the_same_content_in_both_stacks():
    """With mov[m] = ref[m + s] (s the integer shift to apply to mov), ref[ref_sl] == mov[mov_sl]."""
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 1000, (12, 70, 90))
    s = np.array([2, -5, 7])
    mov = np.full((10, 64, 80), -1)
    for m in np.ndindex(mov.shape):
        r = np.add(m, s)
        if np.all(r >= 0) and np.all(r < ref.shape):
            mov[m] = ref[tuple(r)]
    box = (slice(0, 12), slice(10, 70), slice(30, 90))
    ref_sl, mov_sl = overlap(box, s, mov.shape)
    a, b = ref[tuple(ref_sl)], mov[tuple(mov_sl)]
    assert a.shape == b.shape == (10, 49, 57)
    np.testing.assert_array_equal(a, b)


def test_overlap_of_a_block_entirely_outside_is_empty():
    ref_sl, _ = overlap((slice(0, 10), slice(0, 64), slice(0, 64)), (0, 0, 200), (10, 64, 64))
    assert ref_sl[2].stop - ref_sl[2].start <= 0


# --- measure_block --------------------------------------------------------------------------


@pytest.mark.parametrize("seed,shift", [(0, SHIFT), (1, (0.3, -0.27, 0.41)), (2, (-2.35, 4.6, -7.1))])
def test_measure_block_recovers_a_known_shift(seed, shift):
    p, pair = make_pair(shift, seed)
    offset = np.rint(shift).astype(int)
    m = measure_block(pair, WHOLE, offset, (4, 4, 4), refine=1)
    assert m.valid and not m.estimate.at_limit
    err = np.abs(m.estimate.shift - shift)  # the total shift: offset included
    assert err.max() <= 0.03, err
    assert m.estimate.score > 0.5 and m.estimate.sharpness > 30


def test_measure_block_total_shift_does_not_depend_on_the_offset():
    """The offset only says where the moving block is cut; an offset 1-2 px off gives the same total."""
    p, pair = make_pair()
    offset = np.rint(SHIFT).astype(int)
    for delta in ((1, -1, 1), (-1, 2, -2)):
        m = measure_block(pair, WHOLE, offset + delta, (4, 4, 4), refine=1)
        assert m.valid
        assert np.abs(m.estimate.shift - SHIFT).max() <= 0.03


def test_refinement_pass_reduces_the_error():
    p, pair = make_pair((-2.35, 4.6, -7.1), seed=2)
    offset = np.array([-2, 5, -7])
    errs = [
        np.abs(measure_block(pair, WHOLE, offset, (4, 4, 4), refine=r).estimate.shift - p.shift).max() for r in (0, 1)
    ]
    assert errs[1] < errs[0] and errs[1] <= 0.02, errs


def test_block_outside_the_moving_stack_is_not_measured():
    p, pair = make_pair()
    m = measure_block(pair, WHOLE, (0, 0, 200), (4, 4, 4))
    assert not m.valid
    np.testing.assert_array_equal(m.estimate.shift, (0.0, 0.0, 200.0))  # the offset, as given
    assert m.estimate.score == 0.0 and m.estimate.sharpness == 0.0


def test_block_clipped_narrower_than_min_yx_is_not_measured():
    p, pair = make_pair()
    box = (slice(0, 32), slice(0, 128), slice(96, 128))
    offset = (1, -3, 128 - MIN_BLOCK_YX + 1)  # 15 columns of the block remain inside the moving stack
    ref_sl, _ = overlap(box, offset, p.moving.shape)
    assert ref_sl[2].stop - ref_sl[2].start == MIN_BLOCK_YX - 1
    m = measure_block(pair, box, offset, (4, 4, 4))
    assert not m.valid
    np.testing.assert_array_equal(m.estimate.shift, offset)


def test_peak_at_the_search_limit_is_not_valid():
    """True dx 5.6 searched within +-4 of 0: the peak sits on the edge of the range."""
    p, pair = make_pair()
    m = measure_block(pair, WHOLE, (0, 0, 0), (4, 4, 4))
    assert m.estimate.at_limit and not m.valid
    assert m.estimate.shift[2] == 4.0  # the edge lag, no sub-pixel fit there
    ok = measure_block(pair, WHOLE, (0, 0, 0), (4, 4, 7), refine=1)
    assert ok.valid and np.abs(ok.estimate.shift - SHIFT).max() <= 0.03


def test_single_plane_block_is_measured_in_yx():
    p, _ = make_pair((0.0, -3.3, 5.6), seed=3)
    ref, mov = p.reference[16:17], p.moving[16:17]
    hot = camera_hot_pixels((ref[0], mov[0]), 8.0)
    m = measure_block(Pair(ref, mov, hot, Params()), (slice(0, 1), WHOLE[1], WHOLE[2]), (0, -3, 6), (0, 4, 4))
    assert m.valid
    assert m.estimate.shift[0] == 0.0
    np.testing.assert_allclose(m.estimate.shift[1:], (-3.3, 5.6), atol=0.05)


def test_measure_block_does_not_modify_the_stacks():
    p = cached_pair(SHAPE, SHIFT, seed=0)
    ref, mov = p.reference.copy(), p.moving.copy()  # writable copies: prepare() must copy them
    measure_block(Pair(ref, mov, None, Params()), WHOLE, (1, -3, 6), (4, 4, 4))
    np.testing.assert_array_equal(ref, p.reference)
    np.testing.assert_array_equal(mov, p.moving)


# --- measure_many ---------------------------------------------------------------------------


def test_measure_many_yields_in_box_order():
    """Boxes of very different cost (a large one first, an unmeasurable one in the middle) come
    back in the order given, each equal to its own measure_block result."""
    p, pair = make_pair()
    offset = np.rint(SHIFT).astype(int)
    boxes = [
        WHOLE,
        (slice(0, 32), slice(0, 64), slice(0, 64)),
        (slice(0, 32), slice(0, 32), slice(0, 8)),  # after clipping 2 columns wide: not measured
        (slice(0, 32), slice(64, 128), slice(64, 128)),
        (slice(0, 32), slice(0, 64), slice(64, 128)),
    ]
    out = list(measure_many(pair, boxes, offset, (4, 4, 4), workers=2))
    assert len(out) == len(boxes)
    alone = [measure_block(pair, box, offset, (4, 4, 4)) for box in boxes]
    for got, want in zip(out, alone):
        assert got.valid == want.valid
        np.testing.assert_array_equal(got.estimate.shift, want.estimate.shift)
        assert got.estimate.score == want.estimate.score
    assert [m.valid for m in out] == [True, True, False, True, True]


def test_measure_many_passes_refine_on():
    p, pair = make_pair()
    offset = np.rint(SHIFT).astype(int)
    (m,) = measure_many(pair, [WHOLE], offset, (4, 4, 4), workers=1, refine=1)
    want = measure_block(pair, WHOLE, offset, (4, 4, 4), refine=1)
    np.testing.assert_array_equal(m.estimate.shift, want.estimate.shift)
    plain = measure_block(pair, WHOLE, offset, (4, 4, 4), refine=0)
    assert np.any(plain.estimate.shift != want.estimate.shift)


def test_measure_many_stopped_early():
    p, pair = make_pair()
    boxes = [(slice(0, 32), slice(y, y + 32), slice(x, x + 32)) for y in range(0, 128, 32) for x in range(0, 128, 32)]
    gen = measure_many(pair, boxes, (1, -3, 6), (4, 4, 4), workers=2)
    first = next(gen)
    gen.close()  # cancels what is still queued, without error
    want = measure_block(pair, boxes[0], (1, -3, 6), (4, 4, 4))
    np.testing.assert_array_equal(first.estimate.shift, want.estimate.shift)


def test_measure_many_of_no_boxes():
    p, pair = make_pair()
    assert list(measure_many(pair, [], (0, 0, 0), (4, 4, 4), workers=2)) == []


def test_a_lone_block_on_several_threads_gives_the_same_numbers():
    """One box and two workers (a small stack's global refinement): the spare thread cleans the
    second block and shares the FFTs, and the estimate is the one-thread estimate to the bit."""
    _, pair = make_pair()
    one = list(measure_many(pair, [WHOLE], (1, -3, 6), (4, 4, 4), workers=1, refine=1))
    two = list(measure_many(pair, [WHOLE], (1, -3, 6), (4, 4, 4), workers=2, refine=1))
    assert len(one) == len(two) == 1 and one[0].valid and two[0].valid
    np.testing.assert_array_equal(one[0].estimate.shift, two[0].estimate.shift)
    assert one[0].estimate.score == two[0].estimate.score
    assert one[0].estimate.sharpness == two[0].estimate.sharpness
    np.testing.assert_allclose(two[0].estimate.shift, SHIFT, atol=0.05)
