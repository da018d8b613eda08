"""Visual and numerical quality control: projections, overlays, alignment scores.

QC works on *cleaned* data: hot pixels replaced and background removed, plane
by plane, in z-chunks (bounded memory). Raw projections would be dominated by
hot-pixel columns (bright in every plane, so stripes in XZ) and a score on raw
data would reward leaving the stack where it is, since hot pixels and uneven
illumination are fixed to the camera.
"""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np

from .preprocess import hot_pixel_mask, prepare


def projections(vol, *, clean: bool = True, background_sigma: float = 8.0, chunk: int = 8) -> dict[str, np.ndarray]:
    """Maximum-intensity projections: 'xy' (over z), 'xz' (over y), 'yz' (over x).

    With ``clean`` (default) each chunk of planes has its hot pixels replaced and
    its background removed first; zeros that a correction filled in stay zero.
    """
    nz = vol.shape[0]
    mask = None
    if clean and nz >= 3:
        # Zeros are the fill of a corrected stack: ignore them in the minimum over z.
        zmin = None
        for z in range(0, nz, chunk):
            part = np.asarray(vol[z : z + chunk], dtype=np.float32)
            part[part == 0] = np.inf
            m = part.min(axis=0)
            zmin = m if zmin is None else np.minimum(zmin, m)
        zmin[~np.isfinite(zmin)] = 0
        mask = hot_pixel_mask(zmin)
    xy = None
    xz, yz = [], []
    for z in range(0, nz, chunk):
        part = np.asarray(vol[z : z + chunk])
        if clean:
            filled = part == 0
            part = part.astype(np.float32)
            if filled.any():
                # Give the fill a neutral value so it does not pull the background envelope down.
                for i in range(part.shape[0]):
                    inside = part[i][~filled[i]]
                    part[i][filled[i]] = np.median(inside) if inside.size else 0
            part = prepare(part, hot_mask=mask, background=True, background_sigma=background_sigma)
            np.maximum(part, 0, out=part)
            part[filled] = 0
        part = part.astype(np.float32, copy=False)
        m = part.max(axis=0)
        xy = m if xy is None else np.maximum(xy, m)
        xz.append(part.max(axis=1))
        yz.append(part.max(axis=2))
    return {"xy": xy, "xz": np.concatenate(xz, axis=0), "yz": np.concatenate(yz, axis=0)}


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped arrays (0 when one is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / denom) if denom > 0 else 0.0


def alignment_score(reference, image, **kwargs) -> float:
    """How well ``image`` overlaps ``reference``: mean correlation of their cleaned XY and XZ projections.

    1 is perfect; compare the value before and after a correction. Accepts stacks
    or dicts from :func:`projections`.
    """
    pr = reference if isinstance(reference, dict) else projections(reference, **kwargs)
    pi = image if isinstance(image, dict) else projections(image, **kwargs)
    scores = []
    for key in ("xy", "xz"):
        a, b = pr[key], pi[key]
        shape = tuple(min(x, y) for x, y in zip(a.shape, b.shape))
        sl = tuple(slice(0, n) for n in shape)
        scores.append(ncc(a[sl], b[sl]))
    return float(np.mean(scores))


def overlay_rgb(green: np.ndarray, magenta: np.ndarray) -> np.ndarray:
    """Reference in green, moving in magenta (white where they coincide), uint8 RGB."""
    shape = tuple(min(x, y) for x, y in zip(green.shape, magenta.shape))
    sl = tuple(slice(0, n) for n in shape)
    g = _stretch(green[sl])
    m = _stretch(magenta[sl])
    return (np.stack([m, g, m], axis=-1) * 255).astype(np.uint8)


def _stretch(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(img, (1, 99.8))
    if hi <= lo:
        return np.zeros_like(img)
    return np.clip((img - lo) / (hi - lo), 0, 1)


def qc_figure(reference, before, after, *, title: str = "", voxel_size=None) -> bytes:
    """PNG bytes: XY and XZ max projections of reference, moving before and after, and overlays.

    Rows: XY, XZ. Columns: reference, moving (before), moving (after),
    overlay before, overlay after (reference green, moving magenta, white where
    they agree). XZ panels are stretched in z by the voxel aspect when known.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    pr, pb, pa = projections(reference), projections(before), projections(after)
    aspect = 1.0 if voxel_size is None else float(voxel_size[0]) / float(voxel_size[2])
    score_b, score_a = alignment_score(pr, pb), alignment_score(pr, pa)
    ny = pr["xy"].shape[0]
    nz_disp = pr["xz"].shape[0] * aspect
    width = 15
    fig = Figure(figsize=(width, (width / 5) * (ny + nz_disp) / pr["xy"].shape[1] + 0.9), dpi=100)
    grid = fig.add_gridspec(2, 5, height_ratios=[ny, max(nz_disp, 1)], hspace=0.05, wspace=0.03)
    cols = ["reference", "moving (before)", "moving (after)", "overlay before", "overlay after"]
    for row, key in enumerate(("xy", "xz")):
        imgs = [pr[key], pb[key], pa[key], overlay_rgb(pr[key], pb[key]), overlay_rgb(pr[key], pa[key])]
        for col, img in enumerate(imgs):
            ax = fig.add_subplot(grid[row, col])
            if img.ndim == 2:
                ax.imshow(_stretch(img), cmap="gray", interpolation="nearest", aspect=aspect if key == "xz" else 1.0)
            else:
                ax.imshow(img, interpolation="nearest", aspect=aspect if key == "xz" else 1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(cols[col], fontsize=10)
            if col == 0:
                ax.set_ylabel("XY (max over z)" if key == "xy" else "XZ (max over y)", fontsize=9)
    fig.suptitle(
        f"{title}    alignment score (cleaned projections) before {score_b:.3f} -> after {score_a:.3f}", fontsize=11
    )
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def write_qc_figure(path: str | Path, reference, before, after, **kwargs) -> Path:
    from .io import atomic_write_bytes

    return atomic_write_bytes(path, qc_figure(reference, before, after, **kwargs))
