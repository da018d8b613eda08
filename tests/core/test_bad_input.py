"""Every bad input gets a FidregError with a message naming the problem, and inputs stay untouched."""

import json

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.core import FidregError, Params, register


@pytest.fixture(scope="module")
def pair():
    return cached_pair((40, 128, 128), (1.0, 2.0, -3.0), seed=2)


def test_an_image_against_a_stack_is_refused(pair):
    with pytest.raises(FidregError, match=r"reference is a single image \(one plane\) but the other stack has 40"):
        register(pair.reference[0], pair.moving)


def test_single_images_register_in_2d():
    """2D images (and 1-plane stacks) are legal: a (y, x) shift, z = 0."""
    flat = cached_pair((1, 256, 256), (0.0, 2.4, -3.7), seed=5)
    for ref, mov in ((flat.reference[0], flat.moving[0]), (flat.reference, flat.moving)):
        reg = register(ref, mov)
        assert reg.global_shift[0] == 0.0 and reg.reference_shape == (1, 256, 256)
        np.testing.assert_allclose(reg.global_shift[1:], (2.4, -3.7), atol=0.05)


def test_4d_is_refused_but_singletons_are_squeezed(pair):
    with pytest.raises(FidregError, match="moving: expected a 3D .* got 4D"):
        register(pair.reference, np.stack([pair.moving, pair.moving]))
    reg = register(pair.reference[None], pair.moving[None, :, None][:, :, 0])
    np.testing.assert_allclose(reg.global_shift, (1.0, 2.0, -3.0), atol=0.05)


def test_nan_and_inf_are_refused(pair):
    mov = pair.moving.astype(np.float32)
    mov[5, 10, 10] = np.nan
    with pytest.raises(FidregError, match="moving: contains NaN or infinite values"):
        register(pair.reference, mov)
    mov[5, 10, 10] = np.inf
    with pytest.raises(FidregError, match="NaN or infinite"):
        register(pair.reference, mov)


@pytest.mark.parametrize("value", [0, 1234])
def test_constant_stacks_are_refused(pair, value):
    with pytest.raises(FidregError, match="reference: image is constant"):
        register(np.full(pair.reference.shape, value, np.uint16), pair.moving)


def test_empty_stack_is_refused(pair):
    with pytest.raises(FidregError, match="stack is empty"):
        register(np.zeros((0, 128, 128), np.uint16), pair.moving)


@pytest.mark.parametrize(
    "size,msg",
    [
        (0, "block_size must be a positive integer"),
        (-5, "positive integer"),
        (8, "block_size must be at least 16 px \\(a smaller block holds too little to correlate\\)"),
        (200, "block size 200 is larger than the y extent 128"),
    ],
)
def test_bad_block_sizes(pair, size, msg):
    with pytest.raises(FidregError, match=msg):
        register(pair.reference, pair.moving, block_size=size)


def test_blocks_under_what_is_measured_are_refused_but_their_results_still_load(pair, tmp_path):
    """Every block of --block-size 8 was rejected as 'not measured' (a new user's run); a result
    saved with such blocks before the check must still load (apply, the dock's Apply, --skip-existing)."""
    from napari_fidreg.core import Registration

    with pytest.raises(FidregError, match="block_size_z must be at least 3 planes"):
        register(pair.reference, pair.moving, block_size=64, block_size_z=2)
    reg = register(pair.reference, pair.moving, block_size=64, block_size_z=20)
    doc = reg.to_dict()
    doc["parameters"]["block_size"], doc["parameters"]["block_size_z"] = 8, 1
    path = tmp_path / "old.shifts.json"
    path.write_text(json.dumps(doc))
    loaded = Registration.load(path)
    assert (loaded.params.block_size, loaded.params.block_size_z) == (8, 1)
    # a single image has one plane: its blocks' depth is that plane
    image = cached_pair((1, 128, 128), (0.0, 2.0, -3.0), seed=2)
    assert register(image.reference, image.moving, block_size=64, block_size_z=1).has_blocks


def test_block_depth_larger_than_the_stack(pair):
    with pytest.raises(FidregError, match="block size 50 is larger than the z extent 40"):
        register(pair.reference, pair.moving, block_size=64, block_size_z=50)


@pytest.mark.parametrize(
    "sub,msg",
    [
        (((10, 10), (0, 64), (0, 64)), "z range 10:10 is empty or inverted"),
        (((0, 40), (64, 0), (0, 64)), "y range 64:0 is empty or inverted"),
        (((0, 40), (0, 64), (0, 500)), "x range 0:500 goes past the stack's x extent 128"),
        (((0, 40), (0, 64)), "three ranges"),
        ("nonsense", "three"),
    ],
)
def test_bad_subvolumes(pair, sub, msg):
    with pytest.raises(FidregError, match=msg):
        register(pair.reference, pair.moving, subvolume=sub)


def test_unknown_parameter_is_named():
    with pytest.raises(FidregError, match="unknown parameters: blocksize"):
        Params().with_(blocksize=3)


def test_unsupported_dtype(pair):
    with pytest.raises(FidregError, match="unsupported data type"):
        register(pair.reference.astype(complex), pair.moving)


def test_error_is_a_valueerror_for_library_users():
    assert issubclass(FidregError, ValueError)


def test_a_common_region_too_narrow_to_correlate_is_refused(pair):
    with pytest.raises(FidregError, match=r"the region common to both stacks is 10 px along x, too small to correlate"):
        register(pair.reference, pair.moving[:, :, :10])
    with pytest.raises(FidregError, match=r"the subvolume is 12 px along y, too small to correlate \(at least 16\)"):
        register(pair.reference, pair.moving, subvolume=((0, 40), (20, 32), (0, 128)))
