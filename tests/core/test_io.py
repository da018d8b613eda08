import os

import numpy as np
import pytest
import tifffile

from conftest import cached_pair, file_digest
from napari_fidreg.core import FidregError, Params, read_stack, write_stack
from napari_fidreg.core.io import stack_header, stem
from napari_fidreg.core.writers import atomic_write_text, stack_writer


def test_stack_round_trip_keeps_data_dtype_and_voxel_size(tmp_path):
    data = np.random.default_rng(0).integers(0, 60000, (7, 30, 20)).astype(np.uint16)
    path = write_stack(tmp_path / "a.tif", data, voxel_size=(0.2, 0.15, 0.15))
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.data, data)
    np.testing.assert_allclose(stack.voxel_size, (0.2, 0.15, 0.15), rtol=1e-6)
    assert stack.name == "a"
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_ome_tiff_voxel_size(tmp_path):
    data = np.zeros((4, 16, 16), np.uint16)
    data[2, 8, 8] = 100
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.108, "PhysicalSizeY": 0.108, "PhysicalSizeZ": 0.3},
    )
    stack = read_stack(path)
    np.testing.assert_allclose(stack.voxel_size, (0.3, 0.108, 0.108))
    assert stack.name == "x" and stem(path) == "x"


def test_plain_tiff_has_no_voxel_size(tmp_path):
    tifffile.imwrite(tmp_path / "p.tif", np.ones((3, 8, 8), np.uint16))
    assert read_stack(tmp_path / "p.tif").voxel_size is None


def test_lazy_read_memory_maps(tmp_path):
    data = np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16)
    tifffile.imwrite(tmp_path / "m.tif", data)
    stack = read_stack(tmp_path / "m.tif", lazy=True)
    assert isinstance(stack.data, np.memmap)
    np.testing.assert_array_equal(stack.data[2], data[2])


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("hello, I am text"), "not a TIFF file"),
        (lambda p: p.write_bytes(b"II*\x00" + b"\xff" * 64), "cannot read TIFF"),
    ],
)
def test_bad_files(tmp_path, make, msg):
    path = tmp_path / "bad.tif"
    make(path)
    with pytest.raises(FidregError, match=msg):
        read_stack(path)


def test_truncated_tiff_is_a_clear_error(tmp_path):
    good = write_stack(tmp_path / "g.tif", np.ones((5, 64, 64), np.uint16))
    raw = good.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FidregError, match="cut.tif"):
        read_stack(cut)


def test_2d_tiff_reads_as_a_single_plane_and_remembers_it(tmp_path):
    """Was test_2d_tiff_is_refused_with_its_name: single images are legal input now."""
    image = np.arange(64, dtype=np.uint16).reshape(8, 8)
    tifffile.imwrite(tmp_path / "flat.tif", image)
    stack = read_stack(tmp_path / "flat.tif")
    assert stack.data.shape == (1, 8, 8) and stack.ndim == 2 and stack.name == "flat"
    np.testing.assert_array_equal(stack.data[0], image)


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path):
    target = tmp_path / "out.tif"
    write_stack(target, np.ones((2, 4, 4), np.uint16))
    before = file_digest(target)
    with pytest.raises(FidregError, match="cannot write data of type object"):
        write_stack(target, np.ones((2, 4, 4), dtype=object))

    # a writer that fails once its temporary file is open: text that cannot be encoded
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "II*\x00partial \ud800")
    # a writer that fails half-way, after the first plane
    with pytest.raises(OSError, match="disk full"):
        with stack_writer(target, (2, 4, 4), np.uint16) as out:
            out[0] = 7
            raise OSError("disk full")
    assert file_digest(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_big_endian_tiffs_register_and_correct_like_native_ones(tmp_path):
    """A big-endian TIFF memory-maps as '>u2'; the compiled kernels need native numbers."""
    from napari_fidreg.pipeline import register_files

    pair = cached_pair((30, 128, 128), (1.2, -3.4, 5.6), seed=12)
    paths = {}
    for order in ("<", ">"):
        for name, data in (("ref", pair.reference), ("mov", pair.moving)):
            p = tmp_path / f"{name}{'be' if order == '>' else 'le'}.tif"
            tifffile.imwrite(p, data, byteorder=order)
            paths[order, name] = p
    assert read_stack(paths[">", "mov"], lazy=True).data.dtype.byteorder == ">"
    results = {}
    for order in ("<", ">"):
        reg, written = register_files(paths[order, "ref"], paths[order, "mov"], tmp_path / order, Params(block_size=64))
        stack = next(p for p in written if p.name.endswith(".registered.tif"))
        results[order] = (reg, read_stack(stack).data)
    np.testing.assert_allclose(results[">"][0].global_shift, results["<"][0].global_shift, atol=1e-9)
    np.testing.assert_allclose(results[">"][0].global_shift, (1.2, -3.4, 5.6), atol=0.05)
    # big-endian planes take the slab kernel, native ones the z-invariant fast path: the two
    # round a handful of voxels differently, by one grey level at most
    diff = np.abs(results[">"][1].astype(int) - results["<"][1].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_compressed_stack_cut_short_is_truncated_not_a_single_image(tmp_path, keep):
    rng = np.random.default_rng(3)
    full = tmp_path / "full.tif"  # as most Python code writes stacks: tifffile's "shaped" metadata
    tifffile.imwrite(full, rng.integers(0, 4000, (12, 96, 80), dtype=np.uint16), compression="zlib")
    raw = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[: int(len(raw) * keep)])  # a copy that stopped: tifffile falls back to one plane
    for read in (read_stack, stack_header):
        with pytest.raises(
            FidregError, match=r"cut.tif: truncated or damaged: its page \d+ points to a next page that cannot be read"
        ):
            read(cut)
    assert read_stack(full).data.shape == (12, 96, 80) and stack_header(full)[0] == (12, 96, 80)


@pytest.mark.parametrize(
    "kind", [{"ome": True, "metadata": {"axes": "ZYX"}}, {"imagej": True}, {"bigtiff": True}, {"compression": "zlib"}]
)
@pytest.mark.parametrize("keep", [0.999, 0.9, 0.5, 0.1])
def test_a_file_cut_short_is_refused_whatever_wrote_it(tmp_path, kind, keep):
    """An OME-TIFF's XML is written last: cut short, tifffile read it as pages of unknown axes,
    or (cut in half) as a single plane, with no error."""
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, np.random.default_rng(4).integers(0, 4000, (10, 64, 64), dtype=np.uint16), **kind)
    raw = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[: int(len(raw) * keep)])
    for read in (read_stack, stack_header):
        with pytest.raises(FidregError, match=r"cut.tif: (truncated or damaged|cannot read TIFF)"):
            read(cut)
    assert read_stack(full).data.shape == (10, 64, 64)


@pytest.mark.parametrize("bigtiff", [False, True])
def test_a_file_cut_inside_its_last_page_s_entries_is_refused(tmp_path, bigtiff):
    """Cut a few bytes into the last IFD (the tag count half there), tifffile drops that page,
    or all but the first, with only a logged warning: 9 planes of 10, or one 2D image, were
    read. Files written without a shape to announce (metadata=None, PIL, other writers)."""
    full = tmp_path / "full.tif"
    with tifffile.TiffWriter(full, bigtiff=bigtiff) as tif:
        for plane in np.random.default_rng(5).integers(0, 4000, (10, 64, 64), dtype=np.uint16):
            tif.write(plane, metadata=None)
    with tifffile.TiffFile(full) as tif:
        first, last = tif.pages[0].offset, tif.pages[-1].offset
    raw = full.read_bytes()
    cut = tmp_path / "cut.tif"
    for keep in [last + k for k in range(1, 8 if bigtiff else 2)] + [first + 20, first + 40, (first + last) // 2]:
        cut.write_bytes(raw[:keep])
        for read in (read_stack, stack_header):
            with pytest.raises(FidregError, match=r"cut.tif: (truncated or damaged|cannot read TIFF)"):
                read(cut)
    assert read_stack(full).data.shape == (10, 64, 64)


def test_a_pil_stack_cut_in_its_last_ifd_is_refused(tmp_path):
    """PIL writes each IFD after its pixels: the last IFD is the file's end."""
    from PIL import Image

    planes = [Image.fromarray(p) for p in np.random.default_rng(6).integers(0, 250, (5, 40, 30), dtype=np.uint8)]
    full = tmp_path / "pil.tif"
    planes[0].save(full, save_all=True, append_images=planes[1:], compression="tiff_lzw")
    assert read_stack(full).data.shape == (5, 40, 30)
    with tifffile.TiffFile(full) as tif:
        last = tif.pages[-1].offset
    (tmp_path / "cut.tif").write_bytes(full.read_bytes()[: last + 1])
    with pytest.raises(FidregError, match=r"cut.tif: truncated or damaged"):
        read_stack(tmp_path / "cut.tif")


def test_a_cut_ome_tiff_names_its_lost_metadata(tmp_path):
    full = tmp_path / "full.ome.tif"
    tifffile.imwrite(full, np.ones((10, 64, 64), np.uint16), ome=True, metadata={"axes": "ZYX"})
    raw = full.read_bytes()
    for keep in (len(raw) - 100, len(raw) // 2):
        (tmp_path / "cut.ome.tif").write_bytes(raw[:keep])
        with pytest.raises(FidregError, match=r"truncated or damaged: its metadata \(the first page's description\)"):
            read_stack(tmp_path / "cut.ome.tif")


def test_rgb_pages_are_refused_not_taken_for_a_stack_of_3_px_wide_planes(tmp_path):
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((40, 30, 3), np.uint8), photometric="rgb")
    for read in (read_stack, stack_header):
        with pytest.raises(FidregError, match=r"rgb.tif: an image of 3 samples per pixel \(RGB\?\)"):
            read(rgb)
