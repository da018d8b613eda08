"""The series dock in a real napari viewer: a 4D layer of rounds (or several 3D layers) registered
in one run, one 4D result layer, arrows and QC following the slider, Save as the CLI writes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import cached_pair, later_round, run_dock
from napari_fidreg._widgets import SeriesWidget
from napari_fidreg.core import projections, register, warp

pytestmark = pytest.mark.gui
SHIFTS = [(0.6, -2.4, 3.3), (1.2, 4.1, -5.6), (-0.8, 1.5, 2.2)]
VOXEL = (0.2, 0.15, 0.15)


@pytest.fixture(scope="module")
def rounds():
    base = cached_pair((24, 128, 128), (0, 0, 0), seed=61)
    return base.reference, np.stack([later_round(base.moving, s) for s in SHIFTS])


def _run(qtbot, widget):
    run_dock(qtbot, widget, timeout=90_000)


def _scene(make_napari_viewer, rounds):
    ref, movs = rounds
    viewer = make_napari_viewer()
    r = viewer.add_image(ref, name="H0_beads", scale=VOXEL)
    m = viewer.add_image(movs, name="fov1", scale=(1.0, *VOXEL))
    _, widget = viewer.window.add_plugin_dock_widget("napari-fidreg", "Fiducial series registration")
    assert isinstance(widget, SeriesWidget)
    widget.reference.value = r
    widget.moving.value = [m]
    return viewer, widget, r, m


def test_a_4d_layer_registers_round_by_round_into_one_layer(make_napari_viewer, qtbot, rounds, tmp_path):
    viewer, widget, ref, mov = _scene(make_napari_viewer, rounds)
    widget.block_size.value = 64
    _run(qtbot, widget)
    res = widget.result
    assert res is not None, widget.last_error
    registered = [layer for layer in viewer.layers if layer.name.endswith("registered")]
    assert [layer.name for layer in registered] == ["fov1 registered"]  # one layer, not one per round
    out = registered[0]
    assert out.data.shape == (3, 24, 128, 128) and out.data.dtype == np.uint16
    np.testing.assert_allclose(out.scale, (1.0, *VOXEL))
    for i, (reg, truth) in enumerate(zip(res.registrations, SHIFTS)):
        np.testing.assert_allclose(reg.global_shift, truth, atol=0.1)
        # each round of the result aligns onto the reference: nothing left to correct
        left = register(rounds[0], out.data[i])
        assert np.abs(left.global_shift).max() < 0.15, (i, left.global_shift)
        assert reg.voxel_size == pytest.approx(VOXEL)

    # the arrows and the QC dock follow the round under the slider; the drift tab shows the series
    arrows = [layer for layer in viewer.layers if layer.name.startswith("fidreg: series block shifts")]
    assert len(arrows) == 1
    first = np.array(arrows[0].data)
    viewer.dims.set_current_step(0, 1)
    assert "fov1_r1" in widget.summary.value
    arrows = [layer for layer in viewer.layers if layer.name.startswith("fidreg: series block shifts")]
    assert len(arrows) == 1 and not np.allclose(np.array(arrows[0].data)[:, 1], first[:, 1])
    dock = widget.qc_dock()
    assert "round 1: fov1_r1" in dock.title
    tabs = [dock.tabs.tabText(k) for k in range(dock.tabs.count())]
    drift = dock.tabs.widget(tabs.index("drift over rounds"))
    fig = drift.drawn_figure()
    assert len(fig.axes) >= 3 and len(fig.axes[0].lines) > 0

    # Save: every round's result set and the drift table, as the CLI writes them
    widget.folder.value = tmp_path / "saved"
    widget.save()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert "saved 3 rounds" in widget.status.value, widget.last_error
    saved = tmp_path / "saved"
    with open(saved / "drift.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["moving"] for r in rows] == ["fov1_r0", "fov1_r1", "fov1_r2"]
    for r in rows:
        d = json.loads((saved / f"{r['moving']}.shifts.json").read_text())
        assert [float(r[k]) for k in ("dz", "dy", "dx")] == d["global_shift"]
        assert (saved / f"{r['moving']}.registered.tif").exists() and (saved / f"{r['moving']}.qc.png").exists()
    assert (saved / "drift.png").exists()
    # a folder that cannot be written: one notification, no traceback
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    widget.folder.value = blocker / "sub"
    widget.save()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30_000)
    assert widget.last_error.startswith("cannot save into"), widget.last_error


def test_several_3d_layers_are_a_series_and_bad_choices_are_refused(make_napari_viewer, qtbot, rounds):
    ref, movs = rounds
    viewer = make_napari_viewer()
    r = viewer.add_image(ref, name="H0")
    layers = [viewer.add_image(movs[i], name=f"H{i + 1}") for i in range(2)]
    four = viewer.add_image(movs, name="rounds4d")
    widget = SeriesWidget(viewer)
    widget.reference.value = r
    widget.moving.value = [layers[1], layers[0]]  # taken in layer-list order
    _run(qtbot, widget)
    assert widget.result.names == ["H1", "H2"]
    assert viewer.layers["series registered"].data.shape == (2, *ref.shape)
    # the drift plot marks the round shown, on an axis H0 (the reference), H1, H2: it marked the
    # round before (a new user's report)
    dock = widget.qc_dock()
    tabs = [dock.tabs.tabText(k) for k in range(dock.tabs.count())]
    for i in (0, 1):
        widget._show_round(i)
        fig = dock.tabs.widget(tabs.index("drift over rounds")).drawn_figure()
        names = [t.get_text() for t in fig.axes[2].get_xticklabels()]
        marks = [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_color() == "orange"]
        assert names[int(marks[0])] == f"H{i + 1}" and len(marks) == 1, (names, marks)
    widget.moving.value = [four, layers[0]]
    widget.run()
    assert widget.worker is None and "not both" in widget.last_error
    # a registration dock's result in the shared QC dock: the series' drift tab goes
    from napari_fidreg._widgets import RegistrationWidget

    dock = widget.qc_dock()
    assert "drift over rounds" in [dock.tabs.tabText(k) for k in range(dock.tabs.count())]
    single = RegistrationWidget(viewer)
    single.reference.value, single.moving.value = r, layers[0]
    single.with_blocks.value = False
    single.run()
    qtbot.waitUntil(lambda: single.worker is None, timeout=60_000)
    assert single.result is not None, single.last_error
    assert "drift over rounds" not in [dock.tabs.tabText(k) for k in range(dock.tabs.count())]


def test_cancel_leaves_no_result(make_napari_viewer, qtbot, rounds):
    viewer, widget, ref, mov = _scene(make_napari_viewer, rounds)
    widget.run()
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=30_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=10_000)
    assert widget.result is None and "cancelled" in widget.status.value
    assert not any(layer.name.endswith("registered") for layer in viewer.layers)


def test_the_reference_is_never_a_round_and_what_cannot_fit_is_refused_at_once(make_napari_viewer, qtbot, rounds):
    """Found by a new user: after changing the reference, the old list still offered it (and
    registered it onto itself); a block larger than the stacks failed once per round, silently."""
    ref, movs = rounds
    viewer = make_napari_viewer()
    a = viewer.add_image(ref, name="H11")
    b = viewer.add_image(movs[0], name="H12")
    widget = SeriesWidget(viewer)
    widget.reference.value = a
    assert a not in widget.moving.choices and b in widget.moving.choices
    widget.moving.value = [b]
    widget.reference.value = b  # the user changes the reference: the rounds list follows
    assert b not in widget.moving.choices and a in widget.moving.choices
    widget.reference.value = a
    widget.moving.value = [b]
    widget.block_size.value = 256  # larger than the 128 px stacks
    widget.run()
    assert widget.worker is None and "larger than" in widget.last_error
    widget.voxel_size.value = "0.3,0.1,0.1"
    widget.block_size.value = 64
    _run(qtbot, widget)
    assert widget.result.registrations[0].voxel_size == pytest.approx((0.3, 0.1, 0.1))
    np.testing.assert_allclose(a.scale, (0.3, 0.1, 0.1))
    assert not b.visible  # the overlay is the reference and the registered rounds
    # removing the result layer takes its arrows and the result with it
    viewer.layers.remove("series registered")
    assert widget.result is None
    assert not [layer for layer in viewer.layers if layer.name.startswith("fidreg: series")]


def test_the_series_job_s_qc_projections_are_those_of_the_arrays_when_binned_and_of_other_dtypes():
    """Rounds binned for QC (400 px: bin 2), float rounds onto a uint16 reference: 'before' from
    the scan equals projecting the round, 'after' from the warp's planes equals projecting what
    is stored in the 4D result."""
    from napari_fidreg._widgets.jobs import series_job
    from napari_fidreg.core import Params
    from napari_fidreg.core.progress import drain

    base = cached_pair((20, 400, 400), (0, 0, 0), seed=41)
    movs = [later_round(base.moving, (0.0, 1.5, -2.0)).astype(np.float32) * np.float32(1.37),
            later_round(base.moving, (0.5, -1.0, 1.0))]  # fmt: skip
    res = drain(series_job(base.reference, movs, ["f", "u"], Params()))
    assert res.bin == 2
    for i, mov in enumerate(movs):
        for key, got, vol in (("before", res.projections["before"][i], mov),
                              ("after", res.projections["after"][i], res.corrected[i])):  # fmt: skip
            want = projections(vol, bin=res.bin)
            for plane in ("xy", "xz", "yz"):
                np.testing.assert_array_equal(got[plane], want[plane], err_msg=f"{key} {plane} of round {i}")


def test_the_series_job_reads_each_round_once(rounds):
    """Corrected and projected from the data its registration read: no second read per round."""
    from napari_fidreg._widgets.jobs import series_job
    from napari_fidreg.core import Params
    from napari_fidreg.core.progress import drain

    ref, movs = rounds
    reads = []
    sources = [lambda i=i: reads.append(i) or movs[i] for i in range(len(movs))]
    res = drain(series_job(ref, sources, ["a", "b", "c"], Params()))
    assert reads == [0, 1, 2]
    for i in range(3):
        np.testing.assert_array_equal(res.corrected[i], warp(movs[i], res.registrations[i], output_shape=ref.shape))
        # the QC projections from the registration's scan and the warp's planes: those of the arrays
        for key, got, vol in (("before", res.projections["before"][i], movs[i]),
                              ("after", res.projections["after"][i], res.corrected[i])):  # fmt: skip
            want = projections(vol, bin=res.bin)
            for plane in ("xy", "xz", "yz"):
                np.testing.assert_array_equal(got[plane], want[plane], err_msg=f"{key} {plane} of round {i}")


def test_a_tall_dock_keeps_its_rows_together(make_napari_viewer, qtbot, rounds):
    """The spare height goes under the last row: spread between the rows, it left ~250 px gaps
    around the rounds list of a 1100 px window."""
    viewer, widget, _, _ = _scene(make_napari_viewer, rounds)
    viewer.window._qt_window.resize(1500, 1100)
    viewer.window._qt_window.show()
    qtbot.waitUntil(lambda: widget.native.isVisible())
    qtbot.wait(100)
    inner = widget.native.widget()

    def top(w):
        return w.native.mapTo(inner, w.native.rect().topLeft()).y()

    def bottom(w):
        return top(w) + w.native.height()

    assert inner.height() > bottom(widget.save_button) + 200  # a tall dock: room to spare
    assert top(widget.moving) - bottom(widget.reference) < 30
    assert top(widget.voxel_size) - bottom(widget.moving) < 30


def test_registering_the_series_again_keeps_the_new_result(make_napari_viewer, qtbot, rounds):
    """The second run removed the first one's layer after keeping its own result, and the
    removal forgot it: the run ended in an AttributeError (napari aborted)."""
    viewer, widget, ref, mov = _scene(make_napari_viewer, rounds)
    widget.block_size.value = 64
    _run(qtbot, widget)
    first = widget.result
    widget.block_size.value = 0
    _run(qtbot, widget)
    assert widget.result is not None and widget.result is not first, widget.last_error
    registered = [x for x in viewer.layers if x.name.endswith("registered")]
    assert len(registered) == 1  # one layer of the result, not one a run
    np.testing.assert_array_equal(registered[0].data, widget.result.corrected)
    assert not widget.result.registrations[0].has_blocks and "done in" in widget.status.value
