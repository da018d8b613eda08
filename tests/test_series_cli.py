"""Series and whole experiments from the command line, on real TIFFs: drift tables and plots,
--pattern, --skip-existing, --reference-round, and a real LocalCluster against the serial run."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import cached_pair, later_round
from napari_fidreg.core import write_stack

VOXEL = (0.2, 0.15, 0.15)
# per field: the shift of each round onto the reference round H2R2
ROUNDS = {"H1R1": (0.6, -2.4, 3.3), "H3R3": (1.2, 4.1, -5.6), "H10R10": (-0.8, 1.5, 2.2)}


def fidreg(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "napari_fidreg.cli", *map(str, args)], capture_output=True, text=True, env=env
    )


def _field(folder, seed):
    base = cached_pair((24, 128, 128), (0, 0, 0), seed=seed)
    write_stack(folder / "H2R2_beads.tif", base.reference, voxel_size=VOXEL)
    write_stack(folder / "H2R2_cy5.tif", base.reference // 2, voxel_size=VOXEL)  # another channel
    for name, shift in ROUNDS.items():
        moved = later_round(base.moving, shift)
        write_stack(folder / f"{name}_beads.tif", moved, voxel_size=VOXEL)
        write_stack(folder / f"{name}_cy5.tif", moved // 2, voxel_size=VOXEL)
    return folder


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for i, fov in enumerate(("fov1", "fov2")):
        (data / fov).mkdir()
        _field(data / fov, seed=40 + i)
    return data


def _table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_series_writes_its_drift_table_and_plot(experiment, tmp_path):
    fov = experiment / "fov1"
    out = tmp_path / "out"
    res = fidreg("register", fov / "H2R2_beads.tif", fov, "--pattern", "*_beads.tif", "--out", out, "--no-stack")
    assert res.returncode == 0, res.stderr
    rows = _table(out / "drift.csv")
    assert [r["moving"] for r in rows] == ["H1R1_beads", "H3R3_beads", "H10R10_beads"]  # round order, not text order
    for r in rows:
        d = json.loads((out / f"{r['moving']}.shifts.json").read_text())
        assert [float(r[k]) for k in ("dz", "dy", "dx")] == d["global_shift"]  # the JSON's numbers, exactly
        np.testing.assert_allclose([float(r[k]) for k in ("dz_um", "dy_um", "dx_um")], d["global_shift_um"])
        assert [float(r[f"uncertainty_{a}"]) for a in "zyx"] == d["global_uncertainty"]
        assert float(r["score"]) == d["global_score"] and r["confident"] == "1" and r["error"] == ""
        np.testing.assert_allclose(d["global_shift"], ROUNDS[r["moving"][:-6]], atol=0.1)
    assert (out / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # summary lines in µm, as for a single stack, and one progress line per stack and stage on a pipe
    assert res.stdout.count(" µm; score") == 3
    for name in ("H1R1_beads", "H3R3_beads", "H10R10_beads"):
        assert res.stderr.count(f"{name}: reading ...\n") == 1
        assert res.stderr.count(f"{name}: correcting ...\n") == 1  # the QC image's after-stack
    assert "3 of 3 stacks registered" in res.stdout and str(out / "drift.csv") in res.stdout


def test_drift_table_with_a_failed_round_and_no_qc(experiment, tmp_path):
    fov = experiment / "fov1"
    bad = tmp_path / "H4R4_beads.tif"
    bad.write_bytes(b"II*\x00 not a tiff")
    out = tmp_path / "o"
    res = fidreg("register", fov / "H2R2_beads.tif", fov / "H1R1_beads.tif", bad, "--out", out, "--no-qc", "--no-stack")
    assert res.returncode == 1
    rows = _table(out / "drift.csv")
    assert [r["moving"] for r in rows] == ["H1R1_beads", "H4R4_beads"]
    assert rows[0]["error"] == "" and rows[1]["dz"] == "" and "cannot read TIFF" in rows[1]["error"]
    assert not (out / "drift.png").exists()


def test_skip_existing_resumes_a_batch(experiment, tmp_path):
    fov = experiment / "fov1"
    out = tmp_path / "o"
    args = ["register", fov / "H2R2_beads.tif", fov, "--pattern", "*_beads.tif", "--out", out, "--no-qc"]
    assert fidreg(*args).returncode == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "H3R3_beads.registered.tif").unlink()  # an incomplete set is redone
    res = fidreg(*args, "--skip-existing")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("(kept from an earlier run)") == 2 and "2 kept from an earlier run" in res.stdout
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for name in ("H1R1_beads", "H10R10_beads"):
        assert after[f"{name}.shifts.json"] == before[f"{name}.shifts.json"]
    assert (out / "H3R3_beads.registered.tif").exists()
    assert [r["moving"] for r in _table(out / "drift.csv")] == ["H1R1_beads", "H3R3_beads", "H10R10_beads"]
    # files in a shell's order (H10 before H1): the table is still in round order
    shell = sorted(str(q) for q in fov.glob("*_beads.tif") if q.name != "H2R2_beads.tif")
    assert "H10R10" in shell[0]
    assert fidreg("register", fov / "H2R2_beads.tif", *shell, "--out", tmp_path / "shell", "--no-qc").returncode == 0
    assert [r["moving"] for r in _table(tmp_path / "shell" / "drift.csv")] == [
        "H1R1_beads",
        "H3R3_beads",
        "H10R10_beads",
    ]
    # other parameters: nothing is kept
    res = fidreg(*args, "--skip-existing", "--max-local-shift", "3")
    assert res.returncode == 0 and "kept" not in res.stdout


def test_pattern_that_matches_nothing(experiment, tmp_path):
    fov = experiment / "fov1"
    res = fidreg("register", fov / "H2R2_beads.tif", fov, "--pattern", "*_dapi.tif", "--out", tmp_path / "o")
    assert res.returncode == 2 and res.stderr.startswith("fidreg: error:") and len(res.stderr.splitlines()) == 1


def _experiment_run(experiment, out, *extra):
    res = fidreg("register", "--reference-round", "H2R2", "--pattern", "*_beads.tif", experiment,
                 "--out", out, "--no-qc", "--no-stack", "--workers", "1", *extra)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res


def test_whole_experiment_on_a_local_cluster_equals_the_serial_run(experiment, tmp_path):
    serial = _experiment_run(experiment, tmp_path / "serial")
    cluster = _experiment_run(experiment, tmp_path / "cluster", "--cluster", "local:2")
    assert "6 of 6 stacks registered" in serial.stdout and "6 of 6 stacks registered" in cluster.stdout
    for fov in ("fov1", "fov2"):
        a, b = _table(tmp_path / "serial" / fov / "drift.csv"), _table(tmp_path / "cluster" / fov / "drift.csv")
        assert [r["moving"] for r in a] == [r["moving"] for r in b] == ["H1R1_beads", "H3R3_beads", "H10R10_beads"]
        for ra, rb in zip(a, b):
            np.testing.assert_allclose([float(ra[k]) for k in "dz dy dx".split()],
                                       [float(rb[k]) for k in "dz dy dx".split()], atol=1e-9)  # fmt: skip
            np.testing.assert_allclose([float(ra[k]) for k in "dz dy dx".split()], ROUNDS[ra["moving"][:-6]], atol=0.1)
        assert (
            json.loads((tmp_path / "cluster" / fov / "H1R1_beads.shifts.json").read_text())["reference"] == "H2R2_beads"
        )
    assert "[fov2] H3R3_beads: shift" in serial.stdout
    assert serial.stderr.count("fov2/H3R3_beads: reading ...\n") == 1  # progress names the field


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--reference-round", "H7R7"], "no stack of reference round 'H7R7'"),
        (["--reference-round", "H2R2", "--pattern", "*.tif"], "2 stacks of reference round 'H2R2'"),
    ],
)
def test_reference_round_refusals(experiment, tmp_path, args, msg):
    res = fidreg("register", *args, experiment / "fov1", "--out", tmp_path / "o")
    assert res.returncode == 2 and msg in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr


def test_a_rerun_never_mixes_two_runs_drift_files(experiment, tmp_path):
    """--skip-existing redoes sets made without the voxel size now asked for; a --no-qc rerun
    removes the earlier drift.png, which would not show the new table."""
    fov = experiment / "fov1"
    out = tmp_path / "o"
    args = ["register", fov / "H2R2_beads.tif", fov / "H1R1_beads.tif", fov / "H3R3_beads.tif", "--out", out]
    assert fidreg(*args, "--no-stack").returncode == 0 and (out / "drift.png").exists()
    res = fidreg(*args, "--no-stack", "--skip-existing", "--voxel-size", "0.3,0.1,0.1")
    assert res.returncode == 0 and "kept" not in res.stdout
    assert float(_table(out / "drift.csv")[0]["dz_um"]) == pytest.approx(
        0.3 * float(_table(out / "drift.csv")[0]["dz"])
    )
    assert fidreg(*args, "--no-stack", "--no-qc").returncode == 0
    assert (out / "drift.csv").exists() and not (out / "drift.png").exists()


def test_whole_experiment_on_an_existing_scheduler(experiment, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:  # fmt: skip
        res = _experiment_run(experiment, tmp_path / "s", "--scheduler", cluster.scheduler_address)
    assert "6 of 6 stacks registered" in res.stdout
    for fov in ("fov1", "fov2"):
        rows = _table(tmp_path / "s" / fov / "drift.csv")
        for r in rows:
            np.testing.assert_allclose([float(r[k]) for k in ("dz", "dy", "dx")], ROUNDS[r["moving"][:-6]], atol=0.1)


def test_apply_with_match_from_the_command_line(experiment, tmp_path):
    fov = experiment / "fov1"
    out = tmp_path / "o"
    assert fidreg("register", fov / "H2R2_beads.tif", fov, "--pattern", "*_beads.tif", "--out", out, "--no-qc",
                  "--no-stack").returncode == 0  # fmt: skip
    res = fidreg("apply", out, fov / "H10R10_cy5.tif", fov / "H2R2_cy5.tif", "--out", tmp_path / "c",
                 "--match", r"H\d+R\d+")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "H10R10_cy5.registered.tif (round H10R10_beads)" in res.stdout
    assert "H2R2_cy5.registered.tif (reference round H2R2_beads: unchanged)" in res.stdout
