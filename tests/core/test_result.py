import csv
import io
import json

import numpy as np
import pytest

from conftest import cached_pair
from napari_fidreg.core import Block, FidregError, Params, Registration, register
from napari_fidreg.core.result import BLOCK_COLUMNS


def test_registration_json_round_trip_with_units_and_convention():
    pair = cached_pair((60, 256, 256), (1.3, -4.6, 7.25), seed=0)
    reg = register(pair.reference, pair.moving, Params(block_size=128), voxel_size=(0.2, 0.15, 0.15), moving_name="r2")
    d = json.loads(reg.to_json())
    assert d["global_shift"] == list(reg.global_shift)
    np.testing.assert_allclose(d["global_shift_um"], np.multiply(reg.global_shift, (0.2, 0.15, 0.15)))
    assert "apply to the moving stack" in d["sign_convention"]
    assert d["axes"] == "zyx" and d["units"].startswith("pixels")
    assert d["software"]["napari-fidreg"]
    assert d["parameters"]["block_size"] == 128
    assert len(d["blocks"]) == 4
    assert set(d["blocks"][0]) >= {"origin", "size", "shift", "score", "inlier"}
    assert d["global_confident"] is True
    assert d["reference_file"] is None and d["moving_file"] is None  # arrays, not files
    again = Registration.from_json(reg.to_json())
    assert again.to_dict() == reg.to_dict()
    reg.reference_file, reg.moving_file = "/data/fov1/H11R11.tif", "/data/fov1/H2R2.tif"
    assert Registration.from_json(reg.to_json()).moving_file == "/data/fov1/H2R2.tif"


def test_registration_from_before_global_confident_reads_it_from_the_warnings():
    pair = cached_pair((60, 256, 256), (1.3, -4.6, 7.25), seed=0)
    d = register(pair.reference, pair.moving).to_dict()
    del d["global_confident"]
    assert Registration.from_dict(d).global_confident
    d["warnings"] = [
        "no block gave a confident correlation peak: the global shift comes from the coarse, binned estimate"
    ]
    assert not Registration.from_dict(d).global_confident


def test_registration_load_refuses_other_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(FidregError, match="not a napari-fidreg registration"):
        Registration.load(p)
    p.write_text("{not json")
    with pytest.raises(FidregError, match="not valid JSON"):
        Registration.load(p)


def test_blocks_csv_has_a_row_per_block():
    pair = cached_pair((60, 256, 256), (1.3, -4.6, 7.25), seed=0)
    reg = register(pair.reference, pair.moving, block_size=128)
    lines = reg.blocks_csv().strip().splitlines()
    assert lines[0].startswith("iz,iy,ix,z0,y0,x0")
    assert len(lines) == 1 + len(reg.blocks)


def made_up(**changes):
    """A registration with three blocks in a row, built by hand (no computation)."""
    blocks = [
        Block((0, 0, 0), (0, 0, 0), (40, 64, 64), (1.23456, -2.5, 3.0), (1.23456, -2.5, 3.0), 0.51234, 23.456, True),
        Block(
            (0, 0, 1),
            (0, 0, 64),
            (40, 64, 64),
            (1.2, -2.4, 3.1),
            (0.98765, -7.0, 12.25),
            0.0123,
            1.2,
            False,
            "flat peak: sharpness 1.2 < 8",
        ),
        Block((0, 0, 2), (0, 0, 128), (40, 64, 60), (1.1, -2.3, 3.2), None, 0.0, 0.0, False, "rejected, by hand"),
    ]
    fields = dict(
        global_shift=(1.25, -2.5, 3.0),
        global_score=0.5,
        global_sharpness=42.4,
        reference_shape=(40, 64, 188),
        moving_shape=(40, 64, 188),
        params=Params(block_size=64),
        blocks=blocks,
        grid_shape=(1, 1, 3),
        moving="r2",
    )
    fields.update(changes)
    return Registration(**fields)


def test_blocks_csv_with_commas_in_the_reasons_reads_back_block_for_block():
    reg = made_up()
    reader = csv.DictReader(io.StringIO(reg.blocks_csv()))
    rows = list(reader)
    assert reader.fieldnames == list(BLOCK_COLUMNS)
    assert len(rows) == len(reg.blocks) == 3
    for row, b in zip(rows, reg.blocks):
        assert None not in row  # no stray fields from an unquoted comma
        assert tuple(int(row[k]) for k in ("iz", "iy", "ix")) == b.index
        assert tuple(int(row[k]) for k in ("z0", "y0", "x0")) == b.origin
        assert tuple(int(row[k]) for k in ("nz", "ny", "nx")) == b.size
        np.testing.assert_allclose([float(row[k]) for k in ("dz", "dy", "dx")], b.shift, atol=5e-5)
        measured = [row[k] for k in ("measured_dz", "measured_dy", "measured_dx")]
        if b.measured_shift is None:
            assert measured == ["", "", ""]
        else:
            np.testing.assert_allclose([float(v) for v in measured], b.measured_shift, atol=5e-5)
        assert float(row["score"]) == pytest.approx(b.score, abs=5e-5)
        assert float(row["sharpness"]) == pytest.approx(b.sharpness, abs=5e-3)
        assert bool(int(row["inlier"])) is b.inlier
        assert row["reason"] == b.reason
    assert [r["reason"] for r in rows] == ["", "flat peak: sharpness 1.2 < 8", "rejected, by hand"]
    assert rows[0]["dz"] == "1.2346" and rows[1]["sharpness"] == "1.20"


def test_summary_gives_the_shift_in_px_and_um_its_precision_and_the_blocks_kept():
    reg = made_up(voxel_size=(0.2, 0.1, 0.1), global_uncertainty=(0.01, 0.02, 0.003))
    assert reg.summary() == (
        "r2: shift (dz, dy, dx) = (+1.250, -2.500, +3.000) ± (0.010, 0.020, 0.003) px"
        " = (+0.2500, -0.2500, +0.3000) µm; score 0.500, sharpness 42; 1/3 blocks kept"
    )


def test_summary_without_voxel_size_uncertainty_or_blocks():
    reg = made_up(blocks=[], grid_shape=(0, 0, 0), moving="")
    text = reg.summary()
    assert text == "moving: shift (dz, dy, dx) = (+1.250, -2.500, +3.000) px; score 0.500, sharpness 42"
    assert "µm" not in text and "±" not in text and "blocks" not in text


def test_summary_says_low_confidence_and_lists_the_warnings():
    reg = made_up(global_confident=False, warnings=["shapes differ", "background scale halved"])
    lines = reg.summary().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("r2: shift (dz, dy, dx) = (+1.250, -2.500, +3.000) px;")
    assert lines[1] == "  LOW CONFIDENCE: the shift could not be confirmed (see the warnings); check it by eye"
    assert lines[2:] == ["  warning: shapes differ", "  warning: background scale halved"]
    assert "LOW CONFIDENCE" not in made_up().summary()


def test_a_document_from_an_older_version_with_execution_options_still_loads(tmp_path):
    reg = made_up(voxel_size=(0.2, 0.1, 0.1))
    d = reg.to_dict()
    del d["subvolume"]  # older documents kept the region among the parameters
    d["parameters"].update(workers=4, fill_value=0.0, subvolume=[[0, 20], [5, 60], [0, 64]])
    path = tmp_path / "old.shifts.json"
    path.write_text(json.dumps(d))
    old = Registration.load(path)
    assert old.subvolume == ((0, 20), (5, 60), (0, 64))
    assert old.params == reg.params
    assert old.global_shift == reg.global_shift and old.voxel_size == reg.voxel_size
    assert [b.reason for b in old.blocks] == [b.reason for b in reg.blocks]
    assert old.blocks[2].measured_shift is None
    # saved again, it is a current document: the region at the top level, not among the parameters
    again = json.loads(old.to_json())
    assert again["subvolume"] == [[0, 20], [5, 60], [0, 64]]
    assert set(again["parameters"]) == set(Params().to_dict())


def test_a_current_document_keeps_its_subvolume_through_save_and_load(tmp_path):
    reg = made_up(subvolume=((0, 40), (0, 64), (10, 150)))
    path = reg.save(tmp_path / "r2.shifts.json")
    again = Registration.load(path)
    assert again.subvolume == ((0, 40), (0, 64), (10, 150))
    assert again.to_dict() == reg.to_dict()


def test_in_plane_drops_the_z_shift_only_and_says_so():
    pair = cached_pair((60, 256, 256), (1.3, -4.6, 7.25), seed=0)
    reg = register(pair.reference, pair.moving, Params(block_size=128))
    flat = reg.in_plane()
    assert flat.global_shift == (0.0, *reg.global_shift[1:])
    assert [b.shift for b in flat.blocks] == [(0.0, *b.shift[1:]) for b in reg.blocks]
    assert [b.measured_shift for b in flat.blocks] == [b.measured_shift for b in reg.blocks]  # what was measured
    assert reg.global_shift[0] != 0.0 and all(b.shift[0] != 0.0 for b in reg.blocks)  # the original unchanged
    assert flat.warnings[-1] == f"applied in the (y, x) plane only: the z shift {reg.global_shift[0]:.3f} px dropped"
    assert flat.warnings[:-1] == reg.warnings
    assert Registration.from_json(flat.to_json()).to_dict() == flat.to_dict()
