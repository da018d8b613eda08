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

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .kernels import bin_data
from .preprocess import clean, hot_pixel_mask
from .validate import kernel_input

QC_SIZE = 384  # y/x extent the QC projections are reduced to: the coarse scan's binned copies


def display_bin(shape) -> int:
    """The y/x binning that brings a stack of ``shape`` to at most ``QC_SIZE`` pixels.

    It is the coarse scan's (:mod:`.coarse`), so that the QC projections of the reference
    and the moving stack can be taken from the copies the registration has already read
    and cleaned (see ``projections_out`` of :func:`~napari_fidreg.core.register`).
    """
    return max(1, -(-max(int(shape[-2]), int(shape[-1])) // QC_SIZE))


def projections(
    vol, *, clean: bool = True, background_sigma: float = 8.0, chunk: int = 8, bin: int = 1
) -> dict[str, np.ndarray]:
    """Maximum-intensity projections: 'xy' (over z), 'xz' (over y), 'yz' (over x).

    With ``bin`` > 1 each plane is first reduced to the mean of ``bin`` x ``bin``
    pixels (one compiled pass): a 2048-px stack shown in a 400-px panel needs no
    more, and cleaning the reduced planes costs a small fraction of cleaning full
    ones. One projection pixel then spans ``bin`` stack pixels in y/x.

    With ``clean`` (default) each chunk of planes has its hot pixels replaced and
    its background removed first; zeros that a correction filled in stay zero.
    """
    nz = vol.shape[0]
    # one read of the stack, reduced (a copy either way: the input may be read-only); chunks
    # on two threads (the binning kernel releases the GIL; reading a memmap is I/O)
    with ThreadPoolExecutor(max_workers=2) as pool:
        small = np.concatenate(list(pool.map(lambda z: _reduced(vol[z : z + chunk], bin), range(0, nz, chunk))), axis=0)
    if not clean:
        return max_projections(small, clip=False)
    return cleaned_projections(small, bin=bin, background_sigma=background_sigma, chunk=chunk)


class Reduction:
    """A stack reduced for its QC projections plane by plane, as its planes are made.

    The correction hands it each plane as soon as the plane is computed (``on_plane`` of
    :func:`~napari_fidreg.core.warp.iter_warp`), in the warp's own thread while the plane
    is still in cache: the QC image then needs no second read of the corrected stack,
    and the reduction runs in parallel on the warp's threads. At 2048^2, reducing the
    written file chunk by chunk in the main thread was ~1 s of the CLI's default job.
    """

    def __init__(self, shape, bin: int):
        nz, ny, nx = (int(v) for v in shape)
        self.small = np.zeros((nz, -(-ny // bin), -(-nx // bin)), dtype=np.float32)
        self.bin, self.plane_shape = int(bin), (ny, nx)
        self._made = np.zeros(nz, dtype=bool)  # one flag a plane: threads write their own

    @property
    def complete(self) -> bool:
        return bool(self._made.all())

    def add_plane(self, z: int, plane: np.ndarray) -> None:
        """Reduce plane ``z`` (y, x) of the stack; safe to call from several threads at once."""
        nz, plane = self.small.shape[0], kernel_input(plane)
        if not 0 <= int(z) < nz or plane.shape != self.plane_shape:
            ny, nx = self.plane_shape
            raise ValueError(f"plane {z} of shape {plane.shape} is not a plane of this {nz}x{ny}x{nx} stack")
        bin_data(plane[None], self.bin, self.small[z : z + 1])
        self._made[z] = True

    def projections(self, *, background_sigma: float = 8.0, chunk: int = 8) -> dict[str, np.ndarray]:
        """The cleaned projections of the whole stack, as :func:`projections` gives them."""
        if not self.complete:
            made, nz = int(self._made.sum()), self.small.shape[0]
            raise ValueError(f"only {made} of {nz} planes were reduced")
        return cleaned_projections(self.small, bin=self.bin, background_sigma=background_sigma, chunk=chunk)


def cleaned_projections(
    small: np.ndarray, *, bin: int, background_sigma: float = 8.0, chunk: int = 8
) -> dict[str, np.ndarray]:
    """Projections of a reduced float32 stack (modified in place) after cleaning it.

    Hot pixels (from the minimum over z, zeros ignored) replaced, then the background
    removed, a chunk of planes at a time; zeros (a correction's fill) stay zero.
    """
    nz = small.shape[0]
    filled = small == 0  # the fill of a corrected stack
    mask = None
    if nz >= 3:
        # zeros ignored, through the reduction's own mask: no float temporary of the stack (28 MB
        # at 2048^2, whose first touch was most of this step's time in a fresh process)
        zmin = np.min(small, axis=0, initial=np.inf, where=~filled)
        zmin[~np.isfinite(zmin)] = 0
        mask = hot_pixel_mask(zmin)
    sigma = max(background_sigma / bin, 1.0)
    for z in range(0, nz, chunk):
        part, fill = small[z : z + chunk], filled[z : z + chunk]  # views: cleaned in place
        if fill.any():
            # Give the fill a neutral value so it does not pull the background envelope down:
            # the median of a sample of the plane's other pixels (a full median per plane was
            # half of the QC's time for a small stack, where most planes hold some fill)
            for i in np.nonzero(fill.reshape(len(fill), -1).any(axis=1))[0]:
                inside = part[i][~fill[i]]
                part[i][fill[i]] = np.median(inside[:: max(1, inside.size // 4096)]) if inside.size else 0
        # in place: prepare()'s copy in and out were a quarter of the QC's cleaning
        clean(part, hot_mask=mask, background=True, background_sigma=sigma)
    small[filled] = 0
    return max_projections(small)


def max_projections(small: np.ndarray, *, clip: bool = True) -> dict[str, np.ndarray]:
    """'xy', 'xz', 'yz' maximum projections of a (reduced) stack; negatives (noise left by the
    background subtraction) clipped to 0 with ``clip``."""
    p = {"xy": small.max(axis=0), "xz": small.max(axis=1), "yz": small.max(axis=2)}
    if clip:
        for v in p.values():
            np.maximum(v, 0, out=v)
    return p


def _reduced(planes, bin: int) -> np.ndarray:
    """Planes as float32, each ``bin`` x ``bin`` pixels averaged (mostly-fill bins stay fill).

    One compiled pass from the stack's own dtype (:func:`~.kernels.bin_data`), with no
    full-size float copy or fill mask. A bin partly of fill (zeros of a corrected stack)
    averages its stack pixels only: diluted by the fill, the bins along the edge of a
    plane's fill pulled the background envelope down and showed as a bright curve in
    the cleaned projection.
    """
    part = kernel_input(planes)
    nz, ny, nx = part.shape
    out = np.empty((nz, -(-ny // bin), -(-nx // bin)), dtype=np.float32)
    bin_data(part, int(bin), out)
    return out


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally shaped arrays (0 when one is constant)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    # einsum, not np.dot (BLAS): OpenBLAS wakes its threads for a dot of this size, which cost
    # 9 ms a call instead of 0.03 ms while the block threads held the cores
    denom = float(np.sqrt(np.einsum("i,i->", a, a) * np.einsum("i,i->", b, b)))
    return float(np.einsum("i,i->", a, b) / denom) if denom > 0 else 0.0


def alignment_score(reference, image, *, where: dict | None = None, **kwargs) -> float:
    """How well ``image`` overlaps ``reference``: mean correlation of their cleaned XY and XZ projections
    (the XY one only for single images).

    1 is perfect; compare the value before and after a correction. Accepts stacks
    or dicts from :func:`projections`. ``where`` (optional): for 'xy' and 'xz', a
    boolean array of the projection pixels to compare (see :func:`data_pixels`).
    """
    pr = reference if isinstance(reference, dict) else projections(reference, **kwargs)
    pi = image if isinstance(image, dict) else projections(image, **kwargs)
    scores = []
    # a single image: its XZ "projection" is one line, the brightest pixel of each column, whose
    # correlation says nothing of the alignment (a well-corrected image scored 0.57 -> 0.36)
    keys = ("xy",) if single_plane(pr) or single_plane(pi) else ("xy", "xz")
    for key in keys:
        a, b = pr[key], pi[key]
        shapes = (a.shape, b.shape) + (() if where is None else (where[key].shape,))
        shape = tuple(min(x) for x in zip(*shapes))  # the region that all of them cover
        sl = tuple(slice(0, n) for n in shape)
        a, b = a[sl], b[sl]
        if where is not None:
            keep = where[key][sl]
            a, b = a[keep], b[keep]
        scores.append(ncc(a, b))
    return float(np.mean(scores))


def single_plane(proj: dict) -> bool:
    """Whether :func:`projections` ``proj`` are of a single image: its XZ projection is one line."""
    return proj["xz"].shape[0] == 1


def data_pixels(corrected: dict) -> dict | None:
    """For the projections of a corrected stack: the 'xy' and 'xz' pixels that hold data.

    Where the correction took its source from outside the moving stack (a plane of fill at
    the top or bottom after a z shift, a strip at an edge), the projection is exactly 0.
    Comparing those pixels scored a well-corrected round below the uncorrected one (a black
    row in XZ against the reference's beads: 27 of 57 Bintu rounds). Elsewhere the maximum
    over many planes of cleaned noise is above 0. None for fewer than 3 planes (a cleaned
    single plane is 0 wherever it is below its background).
    """
    if corrected["xz"].shape[0] < 3:
        return None
    return {key: corrected[key] > 0 for key in ("xy", "xz")}


def overlay_rgb(green: np.ndarray, magenta: np.ndarray) -> np.ndarray:
    """Reference in green, moving in magenta (white where they coincide), uint8 RGB."""
    shape = tuple(min(x, y) for x, y in zip(green.shape, magenta.shape))
    sl = tuple(slice(0, n) for n in shape)
    return overlay_u8(display_u8(green[sl]), display_u8(magenta[sl]))


def overlay_u8(green: np.ndarray, magenta: np.ndarray) -> np.ndarray:
    """:func:`overlay_rgb` of two equally shaped :func:`display_u8` images."""
    return np.stack([magenta, green, magenta], axis=-1)


def display_u8(img: np.ndarray) -> np.ndarray:
    """``img`` stretched (:func:`stretch`) to uint8 0-255: one panel's grey, or one channel of an overlay."""
    return (stretch(img) * 255).astype(np.uint8)


def stretch(img: np.ndarray) -> np.ndarray:
    """``img`` scaled to [0, 1] between its 1st and 99.8th percentiles (for display)."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = (float(v) for v in np.percentile(img, (1, 99.8)))  # Python floats keep float32
    if hi <= lo:
        return np.zeros_like(img)
    return np.clip((img - lo) / (hi - lo), 0, 1)
