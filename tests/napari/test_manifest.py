"""The npe2 manifest: one file at the repository's top level, a real copy of it in the
package (no symlink, so any checkout and any OS works), and both in every wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import napari_fidreg

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = Path(napari_fidreg.__file__).parent / "napari.yaml"


def test_the_packaged_manifest_is_a_real_copy_of_the_top_level_one():
    top = ROOT / "napari.yaml"
    assert not PACKAGED.is_symlink() and not top.is_symlink()
    assert PACKAGED.read_bytes() == top.read_bytes(), (
        "src/napari_fidreg/napari.yaml differs from napari.yaml: edit the top-level file and copy it "
        "(cp napari.yaml src/napari_fidreg/napari.yaml)"
    )


def test_npe2_finds_the_installed_plugin_through_its_entry_point():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-fidreg")
    assert manifest.name == "napari-fidreg"
    assert {c.id for c in manifest.contributions.commands} >= {
        "napari-fidreg.get_reader",
        "napari-fidreg.write_image",
        "napari-fidreg.sample_pair",
        "napari-fidreg.registration_widget",
    }


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_a_wheel_carries_the_manifest_and_its_entry_point(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    [wheel] = tmp_path.glob("napari_fidreg-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "napari_fidreg/napari.yaml" in names
        assert zf.read("napari_fidreg/napari.yaml") == (ROOT / "napari.yaml").read_bytes()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
        assert "[napari.manifest]" in text and "napari-fidreg = napari_fidreg:napari.yaml" in text
        assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names), names
        zf.extract("napari_fidreg/napari.yaml", tmp_path / "x")
    valid = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", str(tmp_path / "x" / "napari_fidreg" / "napari.yaml")],
        capture_output=True,
        text=True,
    )
    assert valid.returncode == 0 and "valid" in valid.stdout, valid.stdout + valid.stderr
