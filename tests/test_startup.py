"""Start-up: each command imports what it needs, when it needs it (measured in benchmarks/bench.py)."""

import subprocess
import sys

import numpy as np

import napari_fidreg.core as core
from napari_fidreg.core import write_stack
from napari_fidreg.core.synthetic import fiducial_pair

HEAVY = ("numba", "scipy", "matplotlib", "dask", "distributed", "zarr", "PIL")


def _loaded_after(code: str, among: tuple[str, ...] = HEAVY) -> set[str]:
    """The modules (packages, or dotted names) of ``among`` that ``code`` leaves imported, in a
    fresh interpreter."""
    names = "set(sys.modules) | {m.split('.')[0] for m in sys.modules}"
    probe = code + f"\nimport sys\nprint(sorted(({names}) & set({among!r})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(eval(out.stdout.strip().splitlines()[-1]))


def test_the_core_exports_every_name_from_its_module_on_first_use():
    assert sorted(core.__all__) == sorted(core._EXPORTS)
    for name in core.__all__:
        module = __import__(f"napari_fidreg.core.{core._EXPORTS[name]}", fromlist=[name])
        assert getattr(core, name) is getattr(module, name)
        assert name in dir(core)
    try:
        core.not_a_name  # noqa: B018
    except AttributeError as exc:
        assert "not_a_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_the_cli_and_the_napari_reader_load_no_engine_until_they_register():
    assert _loaded_after("import napari_fidreg.cli") == set()
    assert _loaded_after("import napari_fidreg._reader") == set()
    assert _loaded_after("from napari_fidreg.core import FidregError, Params, read_stack") == set()
    out = subprocess.run([sys.executable, "-m", "napari_fidreg.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "register" in out.stdout


def test_registering_a_pair_draws_its_qc_image_without_matplotlib_or_dask(tmp_path):
    pair = fiducial_pair((12, 96, 96), (0.4, -1.3, 2.2), seed=2)
    ref = write_stack(tmp_path / "ref.tif", pair.reference)
    mov = write_stack(tmp_path / "mov.tif", pair.moving)
    code = (
        "from napari_fidreg.cli import main\n"
        f"assert main(['register', {str(ref)!r}, {str(mov)!r}, '--out', {str(tmp_path / 'out')!r}, '-q']) == 0"
    )
    loaded = _loaded_after(code, (*HEAVY, "scipy.ndimage"))
    assert (tmp_path / "out" / "mov.qc.png").stat().st_size > 0
    assert {"numba", "scipy", "PIL"} <= loaded  # the engine and the QC image's encoder
    # nor scipy.ndimage (30 ms): the engine's filters are its own kernels
    assert not loaded & {"matplotlib", "dask", "distributed", "zarr", "scipy.ndimage"}
    assert np.isfinite(core.Registration.load(tmp_path / "out" / "mov.shifts.json").global_shift).all()


def test_a_series_draws_its_drift_plot_without_matplotlib(tmp_path):
    pair = fiducial_pair((12, 96, 96), (0.4, -1.3, 2.2), seed=2)
    ref = write_stack(tmp_path / "H1R1.tif", pair.reference)
    movs = [write_stack(tmp_path / f"H{i}R{i}.tif", pair.moving) for i in (2, 3)]
    args = [str(ref), *map(str, movs), "--out", str(tmp_path / "out"), "-q", "--no-stack"]
    loaded = _loaded_after(f"from napari_fidreg.cli import main\nassert main(['register', *{args!r}]) == 0")
    assert (tmp_path / "out" / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "matplotlib" not in loaded


def test_a_submodule_imported_first_does_not_hide_the_function_of_its_name():
    code = (
        "import napari_fidreg.core.register, napari_fidreg.core.warp, inspect\n"
        "from napari_fidreg.core import register, warp\n"
        "import napari_fidreg.core as core\n"
        "assert inspect.isfunction(register) and inspect.isfunction(warp), (register, warp)\n"
        "assert core.register is register and core.warp is warp\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
