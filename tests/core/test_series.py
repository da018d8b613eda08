"""A series of rounds onto one reference: one result per round, streamed, cancellable, failures kept apart."""

import numpy as np
import pytest

from conftest import cached_pair, later_round
from napari_fidreg.core import FidregError, projections, register
from napari_fidreg.core.drift import DriftRow, drift_csv, natural_key, read_drift_csv
from napari_fidreg.core.series import iter_register_series, register_series

SHIFTS = [(0.5, -2.0, 3.0), (-1.0, 1.5, -2.5), (0.0, 3.0, 1.0)]


@pytest.fixture(scope="module")
def rounds():
    base = cached_pair((30, 128, 128), (0, 0, 0), seed=31)
    movs = [later_round(base.moving, s) for s in SHIFTS]
    return base.reference, movs


def test_each_round_equals_its_own_registration_and_reads_its_own_data(rounds):
    ref, movs = rounds
    loaded, seen = [], []
    loaders = [lambda i=i: loaded.append(i) or movs[i] for i in range(3)]
    out = register_series(ref, loaders, names=["H1", "H2", "H3"], block_size=64,
                          on_round=lambda i, r: seen.append((i, r.name, list(loaded))))  # fmt: skip
    assert [r.name for r in out] == ["H1", "H2", "H3"] and all(r.ok for r in out)
    # a round is read when its turn comes, and reported as soon as it is done
    assert seen == [(0, "H1", [0]), (1, "H2", [0, 1]), (2, "H3", [0, 1, 2])]
    for r, mov, truth in zip(out, movs, SHIFTS):
        alone = register(ref, mov, block_size=64)
        np.testing.assert_allclose(r.registration.global_shift, alone.global_shift, atol=1e-12)
        np.testing.assert_allclose(r.registration.global_shift, truth, atol=0.05)
        assert r.registration.moving == r.name


def test_a_4d_array_is_a_series_and_ticks_name_the_round(rounds):
    ref, movs = rounds
    ticks = []
    gen = iter_register_series(ref, np.stack(movs[:2]), names=["a", "b"])
    while True:
        try:
            ticks.append(next(gen))
        except StopIteration as stop:
            out = stop.value
            break
    assert len(out) == 2 and all(r.ok for r in out)
    assert {t.item for t in ticks if t.stage == "reading"} == {"a", "b"}
    assert [(t.done, t.total) for t in ticks if t.stage == "rounds registered"] == [(0, 2), (1, 2), (2, 2)]


def test_a_bad_round_fails_alone_a_bad_reference_stops_at_once(rounds):
    ref, movs = rounds
    out = register_series(ref, [movs[0], np.zeros_like(movs[0]), movs[1]])
    assert [r.ok for r in out] == [True, False, True]
    assert "constant" in out[1].error and out[1].registration is None
    with pytest.raises(FidregError, match="reference"):
        register_series(np.zeros((30, 128, 128, 2)), movs)
    with pytest.raises(FidregError, match="reference"):
        register_series(np.zeros_like(ref), movs)  # constant: refused once, not once per round
    with pytest.raises(FidregError, match="2 names for 3 rounds"):
        register_series(ref, movs, names=["a", "b"])


def test_projections_out_holds_each_rounds_qc_projections_in_on_round(rounds):
    ref, movs = rounds
    out, seen = {}, []
    bad = np.zeros_like(movs[0])  # fails in its scan (constant), after the round before it set 'moving'
    register_series(ref, [movs[0], bad, movs[1]], projections_out=out,
                    on_round=lambda i, r: seen.append(out.get("moving")))  # fmt: skip
    assert seen[1] is None  # a failed round leaves no projections, not the round before's
    for got, mov in ((seen[0], movs[0]), (seen[2], movs[1])):
        want = projections(mov, bin=out["bin"])
        for key in ("xy", "xz", "yz"):
            np.testing.assert_array_equal(got[key], want[key])
    np.testing.assert_array_equal(out["reference"]["xy"], projections(ref, bin=out["bin"])["xy"])


def test_stopping_the_generator_stops_within_a_round(rounds):
    ref, movs = rounds
    gen = iter_register_series(ref, movs)
    for _ in range(4):
        next(gen)
    gen.close()  # a napari worker's quit(): no further round starts
    with pytest.raises(StopIteration):
        next(gen)


def test_drift_table_holds_each_rounds_numbers_exactly(rounds):
    ref, movs = rounds
    out = register_series(ref, movs[:2], voxel_size=(0.2, 0.1, 0.1))
    rows = [DriftRow(r.name, r.registration) for r in out] + [DriftRow("H9", error="cannot read TIFF")]
    table = read_drift_csv(drift_csv(rows))
    assert [t["moving"] for t in table] == ["round 0", "round 1", "H9"]
    for t, r in zip(table, out):
        reg = r.registration
        assert [float(t[k]) for k in ("dz", "dy", "dx")] == list(reg.global_shift)  # not rounded
        np.testing.assert_allclose([float(t[k]) for k in ("dz_um", "dy_um", "dx_um")], reg.global_shift_um())
        assert [float(t[f"uncertainty_{a}"]) for a in "zyx"] == list(reg.global_uncertainty)
        assert t["confident"] == "1" and t["blocks_total"] == "" and t["error"] == ""
    assert table[2]["dz"] == "" and table[2]["error"] == "cannot read TIFF"


def test_natural_order():
    names = ["H10R10", "H2R2", "H1R1", "h11r11", "H0"]
    assert sorted(names, key=natural_key) == ["H0", "H1R1", "H2R2", "H10R10", "h11r11"]
