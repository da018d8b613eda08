"""fidreg apply: many channels in one command, a batch's folder matched by round, localization tables."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.applying import Match, match_rounds
from napari_fidreg.core import FidregError, Registration, read_stack, write_stack
from napari_fidreg.core.points import map_points


def fidreg(*args):
    return subprocess.run([sys.executable, "-m", "napari_fidreg.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A deformed pair registered with blocks: its folder, the result folder and the pair."""
    d = tmp_path_factory.mktemp("apply")
    pair = cached_pair((30, 192, 192), (0.8, -3.2, 4.1), seed=51, deformation=(0.3, 1.0, 1.0))
    write_stack(d / "H11R11_beads.tif", pair.reference, voxel_size=(0.2, 0.1, 0.1))
    write_stack(d / "H2R2_beads.tif", pair.moving, voxel_size=(0.2, 0.1, 0.1))
    write_stack(d / "H12R12_beads.tif", pair.moving, voxel_size=(0.2, 0.1, 0.1))
    res = fidreg("register", d / "H11R11_beads.tif", d / "H2R2_beads.tif", d / "H12R12_beads.tif",
                 "--out", d / "out", "--block-size", 64, "--no-qc")  # fmt: skip
    assert res.returncode == 0, res.stderr
    return d, d / "out", pair


def test_many_channels_of_a_round_in_one_command(registered, tmp_path):
    d, out, pair = registered
    a = write_stack(tmp_path / "H2R2_cy5.tif", pair.moving // 2)
    b = write_stack(tmp_path / "H2R2_cy3.tif", (pair.moving // 3).astype(np.float32))
    res = fidreg("apply", out / "H2R2_beads.shifts.json", a, b, "--out", tmp_path / "corr")
    assert res.returncode == 0, res.stderr
    fid = read_stack(out / "H2R2_beads.registered.tif").data.astype(float)
    got_a = read_stack(tmp_path / "corr" / "H2R2_cy5.registered.tif").data
    got_b = read_stack(tmp_path / "corr" / "H2R2_cy3.registered.tif").data
    assert got_a.dtype == np.uint16 and got_b.dtype == np.float32
    assert np.abs(got_a - fid / 2).max() <= 1.01 and np.abs(got_b - fid / 3).max() <= 1.0


def test_a_results_folder_matches_each_channel_to_its_round(registered, tmp_path):
    d, out, pair = registered
    files = [write_stack(tmp_path / f"{n}_cy5_signal.tif", pair.moving // 2) for n in ("H2R2", "H12R12", "H11R11")]
    res = fidreg("apply", out, *files, "--out", tmp_path / "corr")
    assert res.returncode == 0, res.stderr
    assert "H2R2_cy5_signal.registered.tif (round H2R2_beads)" in res.stdout
    assert "H12R12_cy5_signal.registered.tif (round H12R12_beads)" in res.stdout  # not H2R2's
    assert "(reference round H11R11_beads: unchanged)" in res.stdout
    ref_round = read_stack(tmp_path / "corr" / "H11R11_cy5_signal.registered.tif").data
    np.testing.assert_array_equal(ref_round, pair.moving // 2)


def test_matching_refuses_what_is_ambiguous(tmp_path):
    rounds = {"fov1_H1R1_beads": tmp_path / "a", "fov1_H2R2_beads": tmp_path / "b"}
    got = match_rounds([tmp_path / "fov1_H2R2_cy5.tif"], rounds, "fov1_H0R0_beads")
    assert got == [Match(tmp_path / "fov1_H2R2_cy5.tif", tmp_path / "b", "fov1_H2R2_beads")]
    with pytest.raises(FidregError, match="matches no round"):
        match_rounds([tmp_path / "fov1_dapi.tif"], rounds, "fov1_H0R0_beads")
    with pytest.raises(FidregError, match="several rounds equally"):
        match_rounds([tmp_path / "H1R1_H2R2_cy5.tif"], rounds, "")
    # a regular expression names the key when the words do not
    got = match_rounds([tmp_path / "cy5-round2.tif"], {"beads-round2": tmp_path / "b", "beads-round3": tmp_path / "c"},
                       "", pattern=r"round(\d+)")  # fmt: skip
    assert got[0].shifts == tmp_path / "b"
    with pytest.raises(FidregError, match="matches no round"):
        match_rounds([tmp_path / "cy5-round9.tif"], {"beads-round2": tmp_path / "b"}, "", pattern=r"round(\d+)")


def _write_table(path, rows, header=("id", "z", "y", "x", "intensity")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_a_localization_table_maps_onto_the_reference(registered, tmp_path):
    d, out, pair = registered
    inside = np.all((pair.beads[:, 1:] > 8) & (pair.beads[:, 1:] < 184), axis=1)
    truth = pair.beads[inside]
    moved = truth - pair.shift_at(truth)  # where the beads are in the moving stack
    table = _write_table(tmp_path / "spots.csv", [(f"s{i}", *p, 100 + i) for i, p in enumerate(moved)])
    res = fidreg("apply", out / "H2R2_beads.shifts.json", table, "--out", tmp_path / "spots.registered.csv")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "spots.registered.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [f"s{i}" for i in range(len(moved))]  # order and other columns kept
    assert [r["intensity"] for r in rows] == [str(100 + i) for i in range(len(moved))]
    got = np.array([[float(r[k]) for k in "zyx"] for r in rows])
    reg = Registration.load(out / "H2R2_beads.shifts.json")
    np.testing.assert_allclose(got, map_points(reg, moved), atol=1e-6)
    rms = np.sqrt(np.mean((got - truth) ** 2, axis=0))
    assert np.all(rms < 0.25), (
        rms
    )  # 3 x 3 blocks of 64 px on a 1 px deformation (finer grid: tests/core/test_points.py)

    # the same in µm, with other column names
    um = np.asarray(reg.voxel_size)
    t2 = _write_table(tmp_path / "spots_um.csv", [(i, *(p * um)) for i, p in enumerate(moved)], ("n", "Z", "Y", "X"))
    res = fidreg(
        "apply", out / "H2R2_beads.shifts.json", t2, "--out", tmp_path / "o", "--columns", "Z,Y,X", "--units", "um"
    )
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "o" / "spots_um.registered.csv", newline="") as f:
        got_um = np.array([[float(r[k]) for k in "ZYX"] for r in csv.DictReader(f)])
    np.testing.assert_allclose(got_um / um, got, atol=1e-5)


@pytest.mark.parametrize(
    "rows,extra,msg",
    [
        ([("a", 1, 2)], [], "no column 'x'"),
        ([("a", 1, "oops", 3)], [], "line 2: column 'y' is not a number: 'oops'"),
        ([("a", 1, 2, 3)], ["--units", "um", "--voxel-size", "0,1,1"], "positive"),
    ],
)
def test_bad_tables_are_one_clear_line(registered, tmp_path, rows, extra, msg):
    d, out, _ = registered
    header = ("id", "z", "y") if msg.startswith("no column") else ("id", "z", "y", "x")
    table = _write_table(tmp_path / "t.csv", rows, header)
    res = fidreg("apply", out / "H2R2_beads.shifts.json", table, "--out", tmp_path / "t.out.csv", *extra)
    assert res.returncode == 2 and msg in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr


def test_a_single_image_of_the_round_gets_the_yx_correction_not_an_empty_image(registered, tmp_path):
    from scipy import ndimage

    d, out, pair = registered
    image = pair.moving[15]  # one plane (or a projection) of the round: a 2D file
    src = write_stack(tmp_path / "H2R2_dapi_mip.tif", image)
    shifts = out / "H2R2_beads.shifts.json"
    reg = Registration.load(shifts)
    assert abs(reg.global_shift[0]) > 0.5  # a z shift that would move a lone plane out of itself
    res = fidreg("apply", shifts, src, "--out", tmp_path / "g", "--global-only")
    assert res.returncode == 0, res.stderr
    assert "is a single image: applied in the (y, x) plane only: the z shift" in res.stderr
    got = read_stack(tmp_path / "g" / "H2R2_dapi_mip.registered.tif")
    assert got.ndim == 2 and got.data.shape == (1, *image.shape)  # a 2D image stays 2D
    expected = ndimage.shift(image.astype(np.float64), reg.global_shift[1:], order=1)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(got.data[0][inner] - expected[inner]).max() <= 1.0  # rounding to uint16
    res = fidreg("apply", shifts, src, "--out", tmp_path / "b")  # the block field, in the plane
    assert res.returncode == 0, res.stderr
    blocks = read_stack(tmp_path / "b" / "H2R2_dapi_mip.registered.tif").data[0]
    assert (blocks > 0).mean() > 0.9 and np.corrcoef(blocks[inner].ravel(), expected[inner].ravel())[0, 1] > 0.8


def test_blank_lines_of_a_table_are_no_spots_and_errors_keep_their_line_numbers(registered, tmp_path):
    d, out, _ = registered
    shifts = out / "H2R2_beads.shifts.json"
    table = tmp_path / "spots.csv"
    table.write_text("id,z,y,x\na,10,50,50\n\n , , , \nb,11,60,40\n\n")  # blank rows inside and at the end
    res = fidreg("apply", shifts, table, "--out", tmp_path / "o.csv")
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "o.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    reg = Registration.load(shifts)
    assert [r["id"] for r in rows] == ["a", "b"]
    got = np.array([[float(r[k]) for k in "zyx"] for r in rows])
    np.testing.assert_allclose(got, map_points(reg, np.array([[10.0, 50, 50], [11, 60, 40]])), atol=1e-5)
    table.write_text("id,z,y,x\na,10,50,50\n\nb,x,1,2\n")
    res = fidreg("apply", shifts, table, "--out", tmp_path / "o2.csv")
    assert res.returncode == 2 and "line 4: column 'z' is not a number: 'x'" in res.stderr


def test_every_channel_of_a_hyperstack_is_corrected_alike(registered, tmp_path):
    import tifffile

    from napari_fidreg.core import warp

    d, out, pair = registered
    channels = np.stack([pair.moving, pair.moving // 2, (pair.moving // 3)])  # (c, z, y, x)
    src = tmp_path / "H2R2_all.tif"  # the round's channels in one ImageJ hyperstack, as Fiji saves them
    tifffile.imwrite(src, np.moveaxis(channels, 0, 1), imagej=True, metadata={"axes": "ZCYX"})
    reg = Registration.load(out / "H2R2_beads.shifts.json")
    res = fidreg("apply", out / "H2R2_beads.shifts.json", src, "--out", tmp_path / "o")
    assert res.returncode == 0, res.stderr
    written = tmp_path / "o" / "H2R2_all.registered.tif"
    assert tifffile.TiffFile(written).series[0].axes == "ZCYX"
    got = read_stack(written, channels=True)
    assert got.data.shape == channels.shape and got.data.dtype == np.uint16
    for c in range(3):
        np.testing.assert_array_equal(got.data[c], warp(channels[c], reg))
    np.testing.assert_allclose(got.voxel_size, (0.2, 0.1, 0.1), rtol=1e-6)  # the registration's
    # by round from a results folder: the reference round's channels are written unchanged
    ref_round = tmp_path / "H11R11_all.tif"
    tifffile.imwrite(ref_round, np.moveaxis(channels, 0, 1), imagej=True, metadata={"axes": "ZCYX"})
    res = fidreg("apply", out, ref_round, src, "--out", tmp_path / "r")
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(
        read_stack(tmp_path / "r" / "H11R11_all.registered.tif", channels=True).data, channels
    )
    np.testing.assert_array_equal(read_stack(tmp_path / "r" / "H2R2_all.registered.tif", channels=True).data, got.data)
    # and registering the hyperstack as a fiducial stack says what to do
    res = fidreg("register", d / "H11R11_beads.tif", src, "--out", tmp_path / "x")
    assert res.returncode == 2 and "holds 3 channels (ZCYX): register its fiducial channel" in res.stderr


def test_an_out_file_that_cannot_be_written_is_named_as_given(registered, tmp_path):
    d, out, _ = registered
    shifts = out / "H2R2_beads.shifts.json"
    res = fidreg("apply", shifts, d / "H12R12_beads.tif", "--out", "/proc/fidreg-x.tif")
    errors = [line for line in res.stderr.splitlines() if line.startswith("fidreg: error:")]
    assert res.returncode != 0 and len(errors) == 1, res.stderr
    assert errors[0].startswith("fidreg: error: --out /proc/fidreg-x.tif: cannot write into /proc: it takes no new")
    (tmp_path / "plain").write_text("x")
    res = fidreg("apply", shifts, d / "H12R12_beads.tif", "--out", tmp_path / "plain" / "c.tif")
    assert f"--out {tmp_path / 'plain' / 'c.tif'}: {tmp_path / 'plain'} is a file, so no folder" in res.stderr
