"""The drift plot's PNG (Pillow) shows each round where its numbers say, as the dock's figure does."""

import io

import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image

from napari_fidreg.core.drift import DriftRow
from napari_fidreg.core.params import Params
from napari_fidreg.core.result import Registration
from napari_fidreg.drift_plot import COLOURS, drift_data, drift_figure, drift_png, layout


def _reg(shift, unc=(0.02, 0.03, 0.01), confident=True, voxel=None):
    return Registration(
        global_shift=shift, global_score=0.9, global_sharpness=20.0, reference_shape=(10, 64, 64),
        moving_shape=(10, 64, 64), params=Params(), global_confident=confident, global_uncertainty=unc,
        voxel_size=voxel,
    )  # fmt: skip


ROWS = [
    DriftRow("H1R1", _reg((0.3, -1.2, 2.5))),
    DriftRow("H2R2", _reg((-0.4, 0.6, -1.0), unc=(0.1, 0.2, 0.05))),
    DriftRow("H4R4", _reg((1.1, 0.2, 0.4), confident=False)),
    DriftRow("H5R5", None, "cannot read"),
    *[DriftRow(f"H{i}R{i}", _reg((0.1 * i, -0.05 * i, 0.2))) for i in range(6, 12)],
]


def _image(rows, **kw) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(drift_png(rows, **kw))).convert("RGB")).astype(int)


def _near(img, u, v, colour, radius=1, tol=60) -> bool:
    """Some pixel within ``radius`` of (u, v) has ``colour`` (antialiased edges blend)."""
    u, v = int(round(float(u))), int(round(float(v)))
    patch = img[v - radius : v + radius + 1, u - radius : u + radius + 1]
    return bool((np.abs(patch - colour).max(axis=-1) <= tol).any())


def _rgb(hex_colour):
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def test_each_round_is_drawn_at_its_shift_in_its_panel():
    d = drift_data(ROWS, reference="H3R3")
    lay = layout(d)
    img = _image(ROWS, reference="H3R3")
    assert img.shape[:2] == (lay.size[1], lay.size[0])
    assert d.names[2] == "H3R3" and d.reference_at == 2  # the reference at its place by name
    for k, a in enumerate(d.axes):
        lo, hi = lay.ylims[k]
        assert lo < min(a.y - a.err) and max(a.y + a.err) < hi and lo < 0 < hi
        u, v = lay.px(k, a.x, a.y)
        for i in np.flatnonzero(a.sure):  # a filled dot of the axis's colour
            assert _near(img, u[i], v[i], _rgb(COLOURS[k])), (k, d.names[int(a.x[i])])
        for i in np.flatnonzero(~a.sure):  # an open red ring: red on it, no dot inside (the line crosses it)
            r = 3.5 * 100 / 72
            assert _near(img, u[i] + r, v[i], (255, 0, 0), radius=2, tol=90)
            assert not _near(img, u[i], v[i], _rgb(COLOURS[k]), radius=1, tol=40)
        # the star at 0 at the reference's place, the failed round's cross on the bottom edge
        su, sv = lay.px(k, d.reference_at, 0.0)
        assert _near(img, su, sv, (0, 0, 0), tol=30)
        left, top, right, bottom = lay.boxes[k]
        fu = lay.px(k, d.failed[0], 0.0)[0]
        assert _near(img, fu, bottom - 0.04 * (bottom - top), (77, 77, 77), tol=40)
        ticks = lay.yticks[k]
        assert len(ticks) >= 2 and all(lo <= t <= hi for t in ticks)


@pytest.mark.parametrize(
    "rows,kw",
    [
        (ROWS, {"reference": "H3R3"}),
        (ROWS[:1], {}),  # one round, centred
        (ROWS[:2], {"reference": "H9R9"}),
        ([DriftRow(f"r{i}", _reg((0.0, 0.0, 0.0), unc=None)) for i in range(3)], {}),  # all at zero
        # no confident round: no legend entry for error bars in either, the same band under the title
        ([DriftRow(f"r{i}", _reg((0.1 * i, 0.2, -0.3), confident=False)) for i in range(4)], {"reference": "r9"}),
    ],
)
def test_the_png_places_panels_ranges_and_rounds_where_the_docks_figure_does(rows, kw):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = drift_figure(rows, **kw)
    FigureCanvasAgg(fig).draw()
    lay = layout(drift_data(rows, **kw))
    height = fig.bbox.height
    for k, ax in enumerate(fig.axes[:3]):
        box = ax.bbox
        np.testing.assert_allclose(lay.boxes[k], (box.x0, height - box.y1, box.x1, height - box.y0), atol=1.0)
        np.testing.assert_allclose(lay.ylims[k], ax.get_ylim(), rtol=1e-6, atol=1e-9)
        for x, y in [(0, 0.0), (len(lay.yticks[k]) - 1, float(lay.yticks[k][-1]))]:
            u, v = ax.transData.transform((x, y))
            np.testing.assert_allclose(lay.px(k, x, y), (u, height - v), atol=1.0)
    d = drift_data(rows, **kw)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [d.label(key) for key in d.legend()]


def test_non_finite_values_of_a_hand_made_result_are_left_out_and_tiny_steps_keep_their_digits():
    rows = [DriftRow("a", _reg((np.nan, 0.5, 1.0))), DriftRow("b", _reg((0.3, np.inf, 1.0), unc=(np.nan, 0.1, 0.1)))]
    d = drift_data(rows)
    assert d.axes[0].x.tolist() == [1.0] and d.axes[0].err.tolist() == [0.0]  # b's dz, without a bar
    assert d.axes[1].x.tolist() == [0.0]
    lay = layout(d)
    assert all(np.isfinite(lim).all() for lim in lay.ylims)
    lo, hi = lay.ylims[0]
    assert lo < 0.3 < hi  # the point is inside its panel, not over the legend
    assert _image(rows).shape == (640, 600, 3)
    from napari_fidreg.drift_plot import _tick_label, _ticks

    ticks = _ticks(-2e-7, 5e-7)
    assert len({_tick_label(t, ticks) for t in ticks}) == len(ticks)  # distinct labels


def test_the_same_rounds_make_the_same_bytes_and_the_figure_the_same_content():
    assert drift_png(ROWS, reference="H3R3") == drift_png(ROWS, reference="H3R3")
    fig = drift_figure(ROWS, reference="H3R3")
    d = drift_data(ROWS, reference="H3R3")
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == d.names
    assert [ax.get_ylabel() for ax in fig.axes[:3]] == ["dz (px)", "dy (px)", "dx (px)"]
    assert d.title in [t.get_text() for t in fig.findobj(Text)]  # the suptitle
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(labels) == sorted(d.label(k) for k in d.legend())


def test_micrometres_when_every_round_knows_its_voxel_size_and_the_wide_and_narrow_layouts():
    rows = [DriftRow(f"r{i}", _reg((0.5, 1.0, -2.0), voxel=(0.2, 0.1, 0.1))) for i in range(3)]
    d = drift_data(rows)
    assert d.unit == "µm" and d.title.endswith("(µm)")
    np.testing.assert_allclose(d.axes[1].y, 0.1)  # 1.0 px x 0.1 µm
    assert layout(d).size == (600, 640)  # 6 inches at 100 dpi: the narrowest
    many = [DriftRow(f"r{i}", _reg((0.1, 0.1, 0.1))) for i in range(60)]
    assert layout(drift_data(many)).size == (1600, 640)  # 16 inches: the widest
    assert _image(rows).shape == (640, 600, 3)


@pytest.mark.parametrize(
    "rows", [[DriftRow("a", None, "x"), DriftRow("b", None, "y")], [DriftRow("a", _reg((0, 0, 0)))]]
)
def test_a_series_of_failures_or_of_zeros_still_draws(rows):
    img = _image(rows, reference="ref")
    assert img.shape[2] == 3 and (img < 128).any()  # text and frames at least
