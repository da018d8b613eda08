"""core/result_checks.py: what a registration read from a file must satisfy to be applied."""

from __future__ import annotations

import pytest

from napari_fidreg.core.errors import FidregError
from napari_fidreg.core.result import Block
from napari_fidreg.core.result_checks import check_grid, check_overlap, number, numbers


@pytest.mark.parametrize(
    "value,kwargs,msg",
    [
        ([1, 2], {}, "must be a list of 3 numbers"),
        ("abc", {}, "must be a list of 3 numbers"),
        ([1, float("nan"), 2], {}, "must be 3 finite numbers"),
        ([1, True, 2], {}, "must be 3 finite numbers"),
        ([1.5, 2, 3], {"integer": True}, "must be 3 finite integers"),
        ([0, 2, 3], {"integer": True, "positive": True}, "must be 3 finite positive integers"),
    ],
)
def test_numbers_refuses(value, kwargs, msg):
    with pytest.raises(FidregError, match=msg):
        numbers(value, "field", **kwargs)


def test_numbers_and_number_accept():
    assert numbers([1, 2.5, -3], "f") == (1.0, 2.5, -3.0)
    assert numbers([1, 2.0, 3], "f", integer=True) == (1, 2, 3)
    assert number(0.5, "f") == 0.5
    with pytest.raises(FidregError, match="f must be a finite number"):
        number(float("inf"), "f")


def test_a_shift_must_leave_an_overlap():
    check_overlap((1.0, -30.0, 30.0), (10, 64, 64), "shift")
    check_overlap((0.0, 5.0, 5.0), (1, 64, 64), "shift")  # a single image: dz = 0 is fine
    with pytest.raises(FidregError, match="moves the stack out of itself along y"):
        check_overlap((0.0, 64.0, 0.0), (10, 64, 64), "shift")
    with pytest.raises(FidregError, match="along z"):
        check_overlap((1.0, 0.0, 0.0), (1, 64, 64), "shift")


def _grid(gy=2, gx=2, size=32):
    return [
        Block((0, iy, ix), (0, iy * size, ix * size), (10, size, size), (0.0, 0.1, 0.2), None, 0.5, 20.0, True)
        for iy in range(gy)
        for ix in range(gx)
    ]


def test_a_consistent_grid_passes():
    check_grid(_grid(), (1, 2, 2), (10, 64, 64))
    check_grid([], (0, 0, 0), (10, 64, 64))


def test_grid_problems_are_named():
    blocks = _grid()
    with pytest.raises(FidregError, match="4 blocks do not fill grid_shape"):
        check_grid(blocks, (1, 3, 2), (10, 64, 64))
    with pytest.raises(FidregError, match="grid_shape .* but no blocks"):
        check_grid([], (1, 2, 2), (10, 64, 64))
    swapped = [blocks[1], blocks[0], *blocks[2:]]
    with pytest.raises(FidregError, match="expected \\[0, 0, 0\\] \\(raster order\\)"):
        check_grid(swapped, (1, 2, 2), (10, 64, 64))
    blocks[3] = Block((0, 1, 1), (0, 32, 40), (10, 32, 24), (0.0, 0.0, 0.0), None, 0.5, 20.0, True)
    with pytest.raises(FidregError, match="do not share one origin and size"):
        check_grid(blocks, (1, 2, 2), (10, 64, 64))
    far = _grid()
    far[2] = Block((0, 1, 0), (0, 32, 0), (10, 32, 32), (0.0, 1e9, 0.0), None, 0.5, 20.0, True)
    with pytest.raises(FidregError, match="block \\[0, 1, 0\\] shift .* out of itself along y"):
        check_grid(far, (1, 2, 2), (10, 64, 64))
