"""Visual and numerical quality control: projections, overlays, alignment scores.

Numbers and arrays only; the figures drawn from them live outside the core
(:mod:`napari_fidreg.figures`).

QC works on *cleaned* data: hot pixels replaced and background removed, plane
by plane, in z-chunks (bounded memory). Raw projections would be dominated by
hot-pixel columns (bright in every plane, so stripes in XZ) and a score on raw
data would reward leaving the stack where it is, since hot pixels and uneven
illumination are fixed to the camera.
"""

from __future__ import annotations

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
            part = np.array(vol[z : z + chunk], dtype=np.float32)  # a copy: the input may be read-only
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
    g = stretch(green[sl])
    m = stretch(magenta[sl])
    return (np.stack([m, g, m], axis=-1) * 255).astype(np.uint8)


def stretch(img: np.ndarray) -> np.ndarray:
    """``img`` scaled to [0, 1] between its 1st and 99.8th percentiles (for display)."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = (float(v) for v in np.percentile(img, (1, 99.8)))  # Python floats keep float32
    if hi <= lo:
        return np.zeros_like(img)
    return np.clip((img - lo) / (hi - lo), 0, 1)
