"""The plugin in a real napari viewer (pytest-qt, Xvfb): no mocks of napari, Qt or files."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import cached_pair, open_sample, run_dock
from napari_fidreg._sample_data import MOVING_NAME, REFERENCE_NAME, SAMPLE_SHIFT, SAMPLE_VOXEL_SIZE
from napari_fidreg._widgets import RegistrationWidget
from napari_fidreg.core import Registration, read_stack

pytestmark = pytest.mark.gui
WIDGET = "Fiducial registration"


def _register(qtbot, widget, timeout=60_000):
    run_dock(qtbot, widget, timeout)


def test_manifest_validates_on_the_installed_plugin():
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-fidreg"], capture_output=True, text=True)
    assert out.returncode == 0 and "valid" in out.stdout, out.stdout + out.stderr


def test_widget_docks_by_name_through_the_plugin_manager(make_napari_viewer):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-fidreg", WIDGET)
    assert isinstance(widget, RegistrationWidget)
    assert dock.isVisible() or dock.parent() is not None


def test_widget_is_in_the_layers_register_menu(make_napari_viewer):
    from napari._app_model import get_app_model

    make_napari_viewer()
    app = get_app_model()
    items = [getattr(i, "command", None) for i in app.menus.get_menu("napari/layers/register")]
    ids = [c.id for c in items if c is not None]
    assert any(i.startswith("napari-fidreg.registration_widget") for i in ids), ids


def test_sample_register_gives_layers_and_the_true_shift(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    ref, mov = open_sample(viewer)
    _, widget = viewer.window.add_plugin_dock_widget("napari-fidreg", WIDGET)
    # with the sample loaded, the defaults are its reference and moving layers
    assert widget.reference.value is ref and widget.moving.value is mov
    _register(qtbot, widget)
    assert widget.result is not None, widget.last_error
    reg = widget.result.registration
    assert np.abs(np.subtract(reg.global_shift, SAMPLE_SHIFT)).max() <= 0.05
    names = [layer.name for layer in viewer.layers]
    registered = viewer.layers[f"{MOVING_NAME} registered"]
    assert registered.data.shape == ref.data.shape and registered.data.dtype == ref.data.dtype
    np.testing.assert_allclose(registered.scale, SAMPLE_VOXEL_SIZE)
    assert registered.colormap.name == "magenta" and registered.blending == "additive"
    assert ref.colormap.name == "green" and ref.blending == "additive"
    assert "fidreg: block shifts (x10)" in names and "fidreg: rejected blocks" in names
    vectors = viewer.layers["fidreg: block shifts (x10)"]
    assert len(vectors.data) == len(reg.blocks) == 4
    assert "score" in vectors.features
    # the QC projections are figures in their own dock, not layers of the scene
    assert not any("projection" in n or "overlay" in n for n in names), names
    assert widget.qc_dock().has_figure()
    assert widget.progress.label == "done"  # not the last stage's name, as if still at work
    assert "px" in widget.shift_label.value and "µm" in widget.shift_label.value
    assert widget.table.shape[0] == 4

    # re-running replaces the results instead of piling them up
    n_layers = len(viewer.layers)
    _register(qtbot, widget)
    assert len(viewer.layers) == n_layers
    assert [layer.name for layer in viewer.layers].count(f"{MOVING_NAME} registered") == 1


def test_cancel_leaves_no_partial_layers_and_a_usable_viewer(make_napari_viewer, qtbot):
    from napari_fidreg.core.synthetic import fiducial_pair

    viewer = make_napari_viewer()
    pair = fiducial_pair((40, 512, 512), (1.0, 3.0, -2.0), seed=3)
    ref = viewer.add_image(pair.reference, name="ref")
    mov = viewer.add_image(pair.moving, name="mov")
    widget = RegistrationWidget(viewer)
    widget.reference.value, widget.moving.value = ref, mov
    widget.block_size.value = 32  # many blocks: a long run
    before = [layer.name for layer in viewer.layers]
    widget.run()
    qtbot.waitUntil(lambda: widget.progress.value >= 12, timeout=30_000)
    t0 = time.perf_counter()
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=10_000)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.5, elapsed
    assert [layer.name for layer in viewer.layers] == before
    assert widget.result is None and "cancelled" in widget.status.value
    assert widget.progress.label == "cancelled"
    # still usable: a new run completes
    widget.block_size.value = 256
    _register(qtbot, widget)
    assert widget.result is not None


def test_worker_error_becomes_a_notification(make_napari_viewer, qtbot):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    ref = viewer.add_image(np.zeros((20, 64, 64), np.uint16), name="blank")
    mov = viewer.add_image(np.random.default_rng(0).integers(0, 100, (20, 64, 64)).astype(np.uint16), name="noise")
    widget = RegistrationWidget(viewer)
    widget.reference.value, widget.moving.value = ref, mov
    widget.with_blocks.value = False
    n_before = len(notification_manager.records)
    _register(qtbot, widget)
    assert "reference: image is constant" in widget.last_error
    assert widget.result is None
    assert "reference: image is constant" in widget.status.value
    new = [str(r.message) for r in notification_manager.records[n_before:]]
    assert any("image is constant" in m for m in new), new


def test_bad_parameters_are_refused_before_any_work(make_napari_viewer):
    viewer = make_napari_viewer()
    ref, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    widget.block_size.value = 512  # larger than the 256 px sample
    widget.run()
    assert widget.worker is None
    assert "block size 512 is larger than the y extent 256" in widget.last_error


def test_event_loop_keeps_running_during_a_large_registration(make_napari_viewer, qtbot):
    """Measure the longest gap between timer ticks on the GUI thread while a worker registers."""
    from qtpy.QtCore import QTimer

    from napari_fidreg.core.synthetic import fiducial_pair

    viewer = make_napari_viewer()
    pair = fiducial_pair((60, 1024, 1024), (1.0, 3.0, -2.0), seed=4, density=3e-4)
    widget = RegistrationWidget(viewer)
    widget.reference.value = viewer.add_image(pair.reference, name="ref")
    widget.moving.value = viewer.add_image(pair.moving, name="mov")
    widget.block_size.value = 256
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    timer.stop()
    assert widget.result is not None, widget.last_error
    gaps = np.diff(ticks)
    print(
        f"event loop: {len(ticks)} ticks, longest gap {gaps.max() * 1000:.0f} ms, median {np.median(gaps) * 1000:.0f} ms"
    )
    # the layers are added on the GUI thread at the end (a 60x1024x1024 image upload); ignore that last step
    assert np.percentile(gaps, 99) < 0.25
    assert len(ticks) > 20


WARM_UP_CHECK = """
import sys, time
import napari
from qtpy.QtWidgets import QApplication
from napari_fidreg._widgets import RegistrationWidget, jobs
from napari_fidreg.core.kernels import gaussian_yx
viewer = napari.Viewer(show=False)
before = ("pandas" in sys.modules, "matplotlib.figure" in sys.modules, len(gaussian_yx.signatures))
widget = RegistrationWidget(viewer)
t0 = time.perf_counter()
def done():
    return jobs._preloading and jobs._preloading[0].ident and not jobs._preloading[0].is_alive()
while time.perf_counter() - t0 < 60 and not done():
    QApplication.processEvents()
    time.sleep(0.01)
after = ("pandas" in sys.modules, "matplotlib.figure" in sys.modules, len(gaussian_yx.signatures))
print(before, after)
viewer.close()
"""


def test_the_dock_warms_the_engine_and_the_result_modules_up_while_the_user_picks_layers():
    """In a fresh process (this one has everything loaded): once the dock is made, its thread
    runs numba's first dispatch and imports pandas and matplotlib, which the first
    registration's worker did at its start and its end, stalling the event loop ~0.2 s each."""
    out = subprocess.run([sys.executable, "-c", WARM_UP_CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "(False, False, 0) (True, True, 1)", out.stdout


def test_overlay_screenshot_is_not_blank(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    for layer in viewer.layers:
        layer.visible = False
    viewer.dims.ndisplay = 3  # maximum-intensity rendering along z: every bead of the overlay
    viewer.reset_view()
    blank = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    for layer in viewer.layers:
        layer.visible = layer.name in (REFERENCE_NAME, f"{MOVING_NAME} registered")
    shot = viewer.screenshot(canvas_only=True, flash=False)
    rgb = shot[..., :3].astype(int)
    assert (blank.sum(axis=-1) > 120).sum() == 0
    bright = rgb.sum(axis=-1) > 120
    assert bright.sum() > 500, bright.sum()
    # registered beads overlap the reference: white (green + magenta) pixels, not only pure colours
    white = (rgb[..., 0] > 100) & (rgb[..., 1] > 100) & (rgb[..., 2] > 100)
    assert white.sum() > 20


def test_save_and_reapply_to_another_channel(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    ref, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    written = widget.save(tmp_path)
    # the CLI's names for a file of that name (see test_widget_and_cli_write_the_same_result_set)
    assert {p.name for p in written} == {
        f"{MOVING_NAME}.shifts.json",
        f"{MOVING_NAME}.blocks.csv",
        f"{MOVING_NAME}.registered.tif",
        f"{MOVING_NAME}.qc.png",
    }
    saved = read_stack(next(p for p in written if p.suffix == ".tif"))
    np.testing.assert_allclose(saved.voxel_size, SAMPLE_VOXEL_SIZE, rtol=1e-6)
    # the barcode channel of the same round: apply the saved shifts
    barcode = viewer.add_image((mov.data // 4).astype(np.uint16), name="barcode", scale=mov.scale, colormap="cyan")
    widget2 = RegistrationWidget(viewer)  # a fresh widget, as after a restart
    widget2.shifts_file.value = next(p for p in written if p.suffix == ".json")
    widget2.apply_target.value = barcode
    widget2.apply_saved()
    qtbot.waitUntil(lambda: widget2.worker is None, timeout=30_000)
    out = viewer.layers["barcode registered"]
    expected = viewer.layers[f"{MOVING_NAME} registered"].data.astype(float) / 4
    # integer division (<= 0.75) and rounding of both results (<= 0.5 + 0.125) bound the difference
    assert np.abs(out.data.astype(float) - expected).max() <= 1.375
    np.testing.assert_allclose(out.scale, mov.scale)
    assert Registration.load(widget2.shifts_file.value).global_shift == widget.result.registration.global_shift


def test_scale_and_translate_are_respected(make_napari_viewer, qtbot):
    """With voxel size (0.2, 0.15, 0.15) µm and an offset, the corrected layer sits on the reference in world space."""
    from napari_fidreg.core.synthetic import fiducial_pair

    viewer = make_napari_viewer()
    pair = fiducial_pair((40, 192, 192), (2.0, -3.0, 4.0), seed=6)
    scale, translate = (0.2, 0.15, 0.15), (1.0, 10.0, -5.0)
    ref = viewer.add_image(pair.reference, name="ref", scale=scale, translate=translate)
    mov = viewer.add_image(pair.moving, name="mov", scale=scale, translate=translate)
    widget = RegistrationWidget(viewer)
    widget.reference.value, widget.moving.value = ref, mov
    widget.with_blocks.value = False
    _register(qtbot, widget)
    out = viewer.layers["mov registered"]
    np.testing.assert_allclose(out.scale, scale)
    np.testing.assert_allclose(out.translate, translate)
    um = widget.result.registration.global_shift_um()
    np.testing.assert_allclose(um, np.multiply((2.0, -3.0, 4.0), scale), atol=0.01)
    # the brightest bead of the reference is found at the same world position in the corrected layer
    inside = np.all((pair.beads > (8, 12, 12)) & (pair.beads < (32, 180, 180)), axis=1)
    bead = pair.beads[inside][np.argmax(pair.amplitudes[inside])]
    zyx = np.round(bead).astype(int)
    idx = np.round(out.world_to_data(ref.data_to_world(zyx))).astype(int)
    np.testing.assert_array_equal(idx, zyx)
    peak = ref.data[tuple(zyx)].astype(float)
    assert abs(float(out.data[tuple(idx)]) - peak) < 0.25 * peak
    assert abs(float(mov.data[tuple(zyx)]) - peak) > 0.4 * peak  # not aligned before


def test_scale_mismatch_is_refused(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = RegistrationWidget(viewer)
    widget.reference.value = viewer.add_image(np.ones((5, 32, 32)), scale=(1, 1, 1), name="a")
    widget.moving.value = viewer.add_image(np.ones((5, 32, 32)), scale=(1, 2, 2), name="b")
    widget.run()
    assert widget.worker is None and "differ: resample one of them first" in widget.last_error


def test_shift_text_says_when_the_global_shift_is_only_the_coarse_estimate():
    from napari_fidreg.core import register
    from napari_fidreg.core.synthetic import fiducial_pair

    rng = np.random.default_rng(8)
    noise = [rng.poisson(300, (20, 96, 96)).astype(np.uint16) for _ in range(2)]
    reg = register(*noise)
    assert not reg.global_confident
    assert "LOW CONFIDENCE" in reg.summary()
    pair = fiducial_pair((20, 96, 96), (0.5, 1.0, -2.0), seed=3)
    assert "LOW CONFIDENCE" not in register(pair.reference, pair.moving).summary()


def test_widget_and_cli_write_the_same_result_set(make_napari_viewer, qtbot, tmp_path):
    """The same stacks, opened in napari through the plugin's reader and registered with the
    dock's defaults, or registered by ``fidreg register`` with the same block size: the same
    file names and the same content (the creation time aside)."""
    import json

    import tifffile

    from napari_fidreg._sample_data import sample_pair

    (ref_data, _, _), (mov_data, _, _) = sample_pair()
    src = tmp_path / "in"
    src.mkdir()
    for name, data in (("H0_beads", ref_data), ("H3 R3 beads", mov_data)):
        tifffile.imwrite(src / f"{name}.tif", data, imagej=True, resolution=(1 / 0.15, 1 / 0.15),
                         metadata={"spacing": 0.2, "unit": "um", "axes": "ZYX"})  # fmt: skip
    viewer = make_napari_viewer()
    ref = viewer.open(str(src / "H0_beads.tif"), plugin="napari-fidreg")[0]
    mov = viewer.open(str(src / "H3 R3 beads.tif"), plugin="napari-fidreg")[0]
    widget = RegistrationWidget(viewer)
    widget.reference.value, widget.moving.value = ref, mov
    _register(qtbot, widget)
    from_widget = {p.name: p for p in widget.save(tmp_path / "napari")}

    cli = subprocess.run(
        [sys.executable, "-m", "napari_fidreg.cli", "register", str(src / "H0_beads.tif"), str(src / "H3 R3 beads.tif"),
         "--out", str(tmp_path / "cli"), "--block-size", str(widget.block_size.value), "-q"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    from_cli = {p.name: p for p in (tmp_path / "cli").iterdir()}
    assert set(from_widget) == set(from_cli) == {
        "H3 R3 beads.shifts.json", "H3 R3 beads.blocks.csv", "H3 R3 beads.registered.tif", "H3 R3 beads.qc.png",
    }  # fmt: skip
    a, b = (json.loads(d["H3 R3 beads.shifts.json"].read_text()) for d in (from_widget, from_cli))
    a.pop("created"), b.pop("created")
    assert a == b
    assert a["moving_file"] == str((src / "H3 R3 beads.tif").resolve())  # layers opened from files
    for name in ("H3 R3 beads.blocks.csv", "H3 R3 beads.qc.png"):
        assert from_widget[name].read_bytes() == from_cli[name].read_bytes(), name
    np.testing.assert_array_equal(
        tifffile.imread(from_widget["H3 R3 beads.registered.tif"]),
        tifffile.imread(from_cli["H3 R3 beads.registered.tif"]),
    )


def test_saving_to_a_folder_that_cannot_be_made_is_one_notification(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert widget.save(blocker / "results") == []  # no exception escapes into the Qt event loop
    assert widget.last_error.startswith("cannot save to") and "results" in widget.last_error
    assert widget.status.value.startswith("error:")


def test_a_failed_run_clears_the_earlier_result_and_a_wrong_shape_is_refused(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    ref, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    assert widget.shift_label.value and widget.save_button.enabled
    assert "sharpness" in widget.shift_label.tooltip and "score" in widget.shift_label.tooltip
    # a layer of another size cannot take this round's shifts
    other = viewer.add_image(np.zeros((40, 512, 512), np.uint16), name="other size")
    widget.apply_target.value = other
    widget.apply_saved()
    assert widget.worker is None and "has shape (40, 512, 512)" in widget.last_error
    assert "other size registered" not in viewer.layers
    # a run that fails leaves no text of the earlier one
    flat = viewer.add_image(np.full(ref.data.shape, 7, np.uint16), name="flat", scale=ref.scale)
    widget.moving.value = flat
    _register(qtbot, widget)
    assert "image is constant" in widget.last_error
    assert widget.shift_label.value == "" and widget.result is None and not widget.save_button.enabled


def test_voxel_size_field_is_prefilled_and_applied(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    ref, mov = open_sample(viewer)
    widget = RegistrationWidget(viewer)
    assert widget.voxel_size.value == "0.2,0.15,0.15"  # from the sample's scale
    # stacks without voxel-size metadata (napari's scale 1, 1, 1): the field is empty...
    bare_ref = viewer.add_image(np.asarray(ref.data), name="bare reference")
    bare_mov = viewer.add_image(np.asarray(mov.data), name="bare moving")
    widget.reference.value, widget.moving.value = bare_ref, bare_mov
    assert widget.voxel_size.value == ""
    # ...and what the user types is applied to both layers and recorded in the result
    widget.voxel_size.value = "0.25, 0.1, 0.1"
    _register(qtbot, widget)
    reg = widget.result.registration
    assert reg.voxel_size == (0.25, 0.1, 0.1)
    np.testing.assert_allclose(bare_ref.scale, (0.25, 0.1, 0.1))
    np.testing.assert_allclose(bare_mov.scale, (0.25, 0.1, 0.1))
    np.testing.assert_allclose(viewer.layers["bare moving registered"].scale, (0.25, 0.1, 0.1))
    assert "µm" in widget.shift_label.value
    widget.voxel_size.value = "0.2,abc"
    widget.run()
    assert widget.worker is None and "expected three positive numbers" in widget.last_error


def test_the_block_table_is_read_only_and_formatted_alike(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    open_sample(viewer)
    widget = RegistrationWidget(viewer)
    _register(qtbot, widget)
    table = widget.table.native
    assert table.editTriggers() == table.EditTrigger.NoEditTriggers
    cols = {table.horizontalHeaderItem(c).text(): c for c in range(table.columnCount())}
    for name, pattern in (("dz", r"^[+-]\d+\.\d{3}$"), ("score", r"^-?\d\.\d{3}$"), ("sharp.", r"^\d+\.\d$")):
        # what is shown: the text as the table's delegate displays it
        delegate, locale = table.itemDelegate(), table.locale()
        texts = [delegate.displayText(table.item(r, cols[name]).text(), locale) for r in range(table.rowCount())]
        assert texts and all(re.match(pattern, t) for t in texts), (name, texts)


def test_the_registration_job_s_qc_projections_are_those_of_the_arrays():
    """'before' from the registration's scan, 'after' from the warp's planes, binned for QC (400 px:
    bin 2), a float moving stack: equal to projecting the arrays, with no second pass over either."""
    from napari_fidreg._widgets.jobs import registration_job
    from napari_fidreg.core import Params, projections
    from napari_fidreg.core.progress import drain

    pair = cached_pair((20, 400, 400), (0.5, -1.5, 2.0), seed=43)
    moving = pair.moving.astype(np.float32) * np.float32(1.37)
    res = drain(registration_job(pair.reference, moving, Params()))
    assert res.projection_bin == 2
    for key, vol in (("reference", pair.reference), ("before", moving), ("after", res.corrected)):
        want = projections(vol, bin=2)
        for plane in ("xy", "xz", "yz"):
            np.testing.assert_array_equal(res.projections[key][plane], want[plane], err_msg=f"{key} {plane}")


SECOND_RUN = """
import time
import numpy as np
import napari
from qtpy.QtWidgets import QApplication
from napari_fidreg.core.synthetic import fiducial_pair
from napari_fidreg._widgets import RegistrationWidget

viewer = napari.Viewer(show=True)
p = fiducial_pair((32, 192, 192), (1.2, -3.4, 5.6), seed=2)
viewer.add_image(p.reference, name="ref")
viewer.add_image(p.moving, name="mov")
w = RegistrationWidget(viewer)
viewer.window.add_dock_widget(w, name="fidreg")
w.reference.value, w.moving.value = viewer.layers["ref"], viewer.layers["mov"]
w.block_size.value = 64


def run():
    w.run()
    while w.worker is not None:
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(50):  # the paints after the run
        QApplication.processEvents()
        time.sleep(0.01)
    assert w.result is not None, w.last_error


run()
first = viewer.layers["mov registered"]
w.with_blocks.value = False
run()
layer = viewer.layers["mov registered"]
assert layer is first and layer.visible and np.array_equal(layer.data, w.result.corrected)
assert not any(x.name.startswith("fidreg: block") for x in viewer.layers)
w.with_blocks.value = True
run()
assert viewer.layers["mov registered"] is first
print("ok", [x.name for x in viewer.layers])
viewer.close()
"""


def test_registering_again_in_a_shown_viewer_updates_the_registered_layer_without_crashing():
    """The second Register of a shown viewer segfaulted in vispy's glDrawArrays (Mesa under
    Xvfb): the registered layer removed, with the block layers, and added again 15 ms later.
    In a process of its own, so that a crash is this test's failure, not the run's end."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", SECOND_RUN], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "ok" in run.stdout, (run.returncode, run.stderr[-3000:])


def test_block_depth_and_series_block_size_skip_what_cannot_be_measured(make_napari_viewer, qtbot):
    """0 means 'all planes' / 'global only'; 1-2 planes or a 1-15 px series block would only be
    refused at Register: the spin boxes step over them, and a typed one is moved out of them."""
    from napari_fidreg._widgets import SeriesWidget
    from napari_fidreg.core.params import MIN_BLOCK_YX, MIN_BLOCK_Z

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-fidreg", WIDGET)
    depth = widget.block_size_z
    depth.native.stepUp()  # the arrow up from 0 (all planes)
    assert depth.value == MIN_BLOCK_Z
    depth.native.stepUp()
    assert depth.value == MIN_BLOCK_Z + 1
    depth.value = MIN_BLOCK_Z
    depth.native.stepDown()  # the arrow down from the smallest depth: back to all planes
    assert depth.value == 0
    depth.value = 2  # typed from 0
    assert depth.value == MIN_BLOCK_Z
    series = SeriesWidget(viewer)
    series.block_size.value = 8  # from 0 (global only)
    assert series.block_size.value == MIN_BLOCK_YX
    series.block_size.value = 0
    assert series.block_size.value == 0
    from qtpy.QtCore import Qt

    edit = series.block_size.native.lineEdit()  # typed key by key: "6" alone is not taken for 16
    edit.selectAll()
    qtbot.keyClicks(edit, "64")
    qtbot.keyClick(edit, Qt.Key_Return)
    assert series.block_size.value == 64
