"""Params: every field validated with an error naming it; plain Python values; JSON in and out."""

import dataclasses
import json
import math

import numpy as np
import pytest

from napari_fidreg.core import FidregError, Params
from napari_fidreg.core.params import NAMES, check_subvolume, parse_subvolume

FLOAT_FIELDS = (
    "hot_pixel_threshold",
    "background_sigma",
    "z_taper",
    "yx_taper",
    "max_local_shift",
    "min_score",
    "min_sharpness",
    "outlier_mad",
    "outlier_floor",
)
BOOL_FIELDS = ("hot_pixels", "background", "refine_blocks")


def test_names_lists_every_field_in_definition_order():
    assert NAMES == tuple(f.name for f in dataclasses.fields(Params))
    assert NAMES == (
        "block_size",
        "block_size_z",
        "hot_pixels",
        "hot_pixel_threshold",
        "background",
        "background_sigma",
        "z_taper",
        "yx_taper",
        "max_shift",
        "max_local_shift",
        "refine_blocks",
        "min_score",
        "min_sharpness",
        "outlier_mad",
        "outlier_floor",
        "n_global_blocks",
    )
    assert tuple(Params().to_dict()) == NAMES


def test_defaults():
    p = Params()
    assert p.block_size is None and p.block_size_z is None and p.max_shift is None
    assert (p.hot_pixels, p.background, p.refine_blocks) == (True, True, False)
    assert (p.z_taper, p.yx_taper, p.min_score, p.min_sharpness) == (0.8, 0.25, 0.01, 8.0)
    assert p.n_global_blocks == 8


@pytest.mark.parametrize(
    "name,value,msg",
    [
        ("block_size", 0, "a positive integer or None, got 0"),
        ("block_size", -1, "a positive integer or None, got -1"),
        ("block_size", 64.0, "a positive integer or None, got 64.0"),
        ("block_size", "64", "a positive integer or None, got '64'"),
        ("block_size", True, "a positive integer or None, got True"),
        ("block_size", np.bool_(True), "a positive integer or None, got "),
        ("block_size_z", 0, "a positive integer or None, got 0"),
        ("block_size_z", 2.5, "a positive integer or None, got 2.5"),
        ("block_size_z", False, "a positive integer or None, got False"),
        ("n_global_blocks", 0, "an integer >= 1, got 0"),
        ("n_global_blocks", -3, "an integer >= 1, got -3"),
        ("n_global_blocks", 8.0, "an integer >= 1, got 8.0"),
        ("n_global_blocks", True, "an integer >= 1, got True"),
        ("n_global_blocks", None, "an integer >= 1, got None"),
        ("hot_pixels", 1, "True or False, got 1"),
        ("hot_pixels", "yes", "True or False, got 'yes'"),
        ("background", None, "True or False, got None"),
        ("background", 0, "True or False, got 0"),
        ("refine_blocks", "True", "True or False, got 'True'"),
        ("z_taper", 1.5, r"in \[0, 1\], got 1.5"),
        ("z_taper", -0.1, r"in \[0, 1\], got -0.1"),
        ("yx_taper", 1.01, r"in \[0, 1\], got 1.01"),
        ("min_score", 2, r"in \[-1, 1\], got 2"),
        ("min_score", -1.5, r"in \[-1, 1\], got -1.5"),
        ("outlier_mad", 0, "> 0, got 0"),
        ("outlier_mad", -1.0, "> 0, got -1.0"),
        ("hot_pixel_threshold", 0.0, "> 0, got 0.0"),
        ("background_sigma", 0, "> 0, got 0"),
        ("max_local_shift", -2, "> 0, got -2"),
        ("min_sharpness", -0.1, ">= 0, got -0.1"),
        ("outlier_floor", -1, ">= 0, got -1"),
    ],
)
def test_bad_values_are_refused_naming_the_field(name, value, msg):
    with pytest.raises(FidregError, match=rf"^{name} must be {msg}"):
        Params(**{name: value})


@pytest.mark.parametrize("name", FLOAT_FIELDS)
@pytest.mark.parametrize(
    "value", [True, np.bool_(False), "1.0", None, math.nan, math.inf, -math.inf, np.float32("nan")]
)
def test_numbers_must_be_finite_reals_not_bools_or_strings(name, value):
    with pytest.raises(FidregError, match=rf"^{name} must be a finite number, got "):
        Params(**{name: value})


@pytest.mark.parametrize(
    "value", [(1, 2), 5, (1, -2, 3), (math.nan, 1, 1), (1, math.inf, 1), ("a", 1, 1), (1, 2, 3, 4), [None, 1, 1]]
)
def test_bad_max_shift(value):
    with pytest.raises(FidregError, match=r"^max_shift must be three finite numbers >= 0 \(dz, dy, dx\), got "):
        Params(max_shift=value)


@pytest.mark.parametrize(
    "changes",
    [
        {"z_taper": 0, "yx_taper": 1},
        {"z_taper": 1.0, "yx_taper": 0.0},
        {"min_score": -1, "min_sharpness": 0, "outlier_floor": 0},
        {"min_score": 1.0},
        {"block_size": 1, "block_size_z": 1, "n_global_blocks": 1},
        {"max_shift": (0, 0, 0)},
    ],
)
def test_closed_bounds_are_accepted(changes):
    p = Params(**changes)
    for name, value in changes.items():
        expected = tuple(float(v) for v in value) if name == "max_shift" else value
        assert getattr(p, name) == expected


def test_numpy_scalars_are_accepted_and_stored_as_plain_python_types():
    p = Params(
        block_size=np.int64(128),
        block_size_z=np.int32(20),
        n_global_blocks=np.uint8(4),
        hot_pixels=np.bool_(False),
        background=np.True_,
        refine_blocks=np.bool_(True),
        z_taper=np.float32(0.5),
        min_score=np.float64(0.2),
        hot_pixel_threshold=np.int16(6),
        max_shift=np.array([2, 10.5, 10], dtype=np.float32),
    )
    for name, kind in [("block_size", int), ("block_size_z", int), ("n_global_blocks", int)]:
        assert type(getattr(p, name)) is kind
    for name in BOOL_FIELDS:
        assert type(getattr(p, name)) is bool
    for name in FLOAT_FIELDS:
        assert type(getattr(p, name)) is float
    assert (p.block_size, p.block_size_z, p.n_global_blocks) == (128, 20, 4)
    assert (p.hot_pixels, p.background, p.refine_blocks) == (False, True, True)
    assert (p.z_taper, p.min_score, p.hot_pixel_threshold) == (0.5, 0.2, 6.0)
    assert type(p.max_shift) is tuple and all(type(v) is float for v in p.max_shift)
    assert p.max_shift == (2.0, 10.5, 10.0)
    # plain types all the way down: the standard json module takes it as is
    assert json.loads(json.dumps(p.to_dict()))["max_shift"] == [2.0, 10.5, 10.0]


def test_integers_in_number_fields_become_floats():
    p = Params(min_sharpness=12, background_sigma=4, outlier_floor=0)
    assert type(p.min_sharpness) is float and p.min_sharpness == 12.0
    assert type(p.background_sigma) is float and type(p.outlier_floor) is float


@pytest.mark.parametrize(
    "params",
    [
        Params(),
        Params(block_size=64, block_size_z=16, max_shift=(2, 10, 10.5), refine_blocks=True, hot_pixels=False),
        Params(z_taper=0.0, yx_taper=1.0, min_score=-1.0, min_sharpness=0.0, n_global_blocks=32),
    ],
)
def test_to_dict_from_dict_round_trip_through_json(params):
    d = params.to_dict()
    assert set(d) == set(NAMES)
    assert d["max_shift"] is None or d["max_shift"] == list(params.max_shift)
    text = json.dumps(d)
    again = Params.from_dict(json.loads(text))
    assert again == params
    assert again.to_dict() == d


def test_from_dict_does_not_change_its_argument():
    d = {"block_size": 32, "max_shift": [1, 2, 3]}
    p = Params.from_dict(d)
    assert p.max_shift == (1.0, 2.0, 3.0)
    assert d == {"block_size": 32, "max_shift": [1, 2, 3]}


def test_from_dict_validates_the_values():
    with pytest.raises(FidregError, match=r"^z_taper must be in \[0, 1\], got 1.5"):
        Params.from_dict({"z_taper": 1.5})
    with pytest.raises(FidregError, match="^max_shift must be three"):
        Params.from_dict({"max_shift": [1, 2]})


def test_from_dict_refuses_unknown_keys_and_names_them():
    with pytest.raises(FidregError, match="^unknown parameters: bogus, workers$"):
        Params.from_dict({"block_size": 64, "workers": 4, "bogus": 1})


@pytest.mark.parametrize("value", [[("block_size", 64)], "block_size=64", None, 64])
def test_from_dict_refuses_what_is_not_a_mapping(value):
    with pytest.raises(
        FidregError, match=f"^parameters must be a mapping of names to values, got {type(value).__name__}"
    ):
        Params.from_dict(value)


def test_with_changes_validates_and_leaves_the_original_alone():
    p = Params(block_size=128)
    q = p.with_(block_size=64, min_sharpness=10)
    assert (q.block_size, q.min_sharpness) == (64, 10.0)
    assert (p.block_size, p.min_sharpness) == (128, 8.0)
    assert q.with_(block_size=128, min_sharpness=8.0) == p
    assert p.with_(block_size=None).block_size is None
    with pytest.raises(FidregError, match=r"^z_taper must be in \[0, 1\]"):
        p.with_(z_taper=1.5)
    with pytest.raises(FidregError, match="^unknown parameters: fill_value, subvolume$"):
        p.with_(subvolume=((0, 1), (0, 1), (0, 1)), fill_value=0)


def test_params_are_frozen_and_hashable():
    p = Params(block_size=64, max_shift=(1, 2, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.block_size = 32  # type: ignore[misc]
    assert {p: "x"}[Params(block_size=64, max_shift=(1.0, 2.0, 3.0))] == "x"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("0:40,10:138,0:128", ((0, 40), (10, 138), (0, 128))),
        ("5:6,0:1,7:1000", ((5, 6), (0, 1), (7, 1000))),
        (" 0:10, 2:20 ,3:30", ((0, 10), (2, 20), (3, 30))),
    ],
)
def test_parse_subvolume(text, expected):
    sub = parse_subvolume(text)
    assert sub == expected
    assert all(type(v) is int for r in sub for v in r)


@pytest.mark.parametrize(
    "text,msg",
    [
        ("0:10,2:20", r"'0:10,2:20': expected z0:z1,y0:y1,x0:x1"),
        ("0:10,2:20,3:30,", "expected z0:z1,y0:y1,x0:x1"),
        ("", "expected z0:z1,y0:y1,x0:x1"),
        ("0:10:2,2:20,3:4", r"z range '0:10:2' is not start:stop"),
        ("0:10,20,3:4", r"y range '20' is not start:stop"),
        ("0:10,a:20,3:4", r"y range 'a:20' is not integers"),
        ("0:10,2:20,:4", r"x range ':4' is not integers"),
        ("0:10,2:20,0.5:4", r"x range '0.5:4' is not integers"),
        ("10:10,2:20,3:4", r"z range 10:10 is empty or inverted \(need 0 <= start < stop\)"),
        ("0:10,20:2,3:4", "y range 20:2 is empty or inverted"),
        ("-1:10,2:20,3:4", "z range -1:10 is empty or inverted"),
    ],
)
def test_parse_subvolume_refuses(text, msg):
    with pytest.raises(FidregError, match=f"^subvolume .*{msg}"):
        parse_subvolume(text)


@pytest.mark.parametrize(
    "sub",
    [
        ((0, 40), (10, 138), (0, 128)),
        [[0, 40], [10, 138], [0, 128]],
        np.array([[0, 40], [10, 138], [0, 128]]),
        [(np.int64(0), np.int32(40)), (10, 138), (0, 128)],
    ],
)
def test_check_subvolume_accepts_pairs_and_returns_plain_ints(sub):
    ranges = check_subvolume(sub)
    assert ranges == ((0, 40), (10, 138), (0, 128))
    assert type(ranges) is tuple and all(type(r) is tuple for r in ranges)
    assert all(type(v) is int for r in ranges for v in r)


@pytest.mark.parametrize(
    "sub,msg",
    [
        ("nonsense", r"must be three \(start, stop\) pairs for z, y, x, got 'nonsense'"),
        (None, "must be three .start, stop. pairs"),
        (((0, 1, 2), (0, 10), (0, 10)), "must be three .start, stop. pairs"),
        ((("a", 1), (0, 10), (0, 10)), "must be three .start, stop. pairs"),
        (((0, 10), (0, 10)), r"must have three ranges \(z, y, x\), got 2"),
        (((0, 10),) * 4, "must have three ranges .z, y, x., got 4"),
        (((0, 10), (5, 5), (0, 10)), "y range 5:5 is empty or inverted"),
        (((0, 10), (0, 10), (10, 3)), "x range 10:3 is empty or inverted"),
        (((-2, 10), (0, 10), (0, 10)), "z range -2:10 is empty or inverted"),
    ],
)
def test_check_subvolume_refuses(sub, msg):
    with pytest.raises(FidregError, match=f"^subvolume {msg}"):
        check_subvolume(sub)
