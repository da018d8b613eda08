"""Files in: TIFF / OME-TIFF stacks and (OME-)Zarr stores with their voxel size.

Readers turn every failure (missing, empty, damaged file, a damaged chunk read
later) into a :class:`FidregError` naming the file. Writers are in :mod:`.writers`.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from .errors import FidregError
from .validate import as_volume, check_dtype, drop_singletons

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf")
ZARR_SUFFIXES = (".ome.zarr", ".zarr")
_NOT_Z = {"T": "time points", "C": "channels", "R": "rounds", "E": "lambda", "H": "phases", "I": "series"}
_UNITS_UM = {"um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "mm": 1e3}


@dataclass
class Stack:
    """A stack read from disk.

    ``data`` is always (z, y, x): a single image (a 2D file) is a stack of one plane, and
    ``ndim`` says which the file held, so that a corrected stack is written back with the
    input's dimensionality. ``notes`` are things the user should know about the file
    (which series of a multi-series OME-TIFF was read).
    """

    data: np.ndarray
    voxel_size: tuple[float, float, float] | None
    name: str
    path: Path
    ndim: int = 3
    notes: list[str] = field(default_factory=list)


def stem(path: str | Path) -> str:
    """File name without .tif/.tiff/.ome.tif/.zarr (or, for other files, their last suffix)."""
    name = Path(path).name
    bare = stem_of_name(name)
    return bare if bare != name else Path(name).stem


def stem_of_name(name: str) -> str:
    """``name`` without a trailing image extension (.tif, .ome.tif, .zarr ...), if it has one."""
    for suffix in sorted(TIFF_SUFFIXES + ZARR_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def read_stack(
    path: str | Path, *, lazy: bool = False, series: int | None = None, rounds: bool = False, channels: bool = False
) -> Stack:
    """Read a TIFF/OME-TIFF stack (or a single image) or a Zarr store, and its voxel size.

    Parameters
    ----------
    path : path to a .tif/.tiff/.ome.tif file or a .zarr/.ome.zarr folder
    lazy : bool
        Memory-map an uncompressed TIFF, or open a Zarr store chunk by chunk, so that
        the data are read only where the registration looks. A compressed TIFF is
        decoded at once, on every core (tifffile's ``maxworkers``): compressed strips
        cannot be read in place, and decoding up front reports a damaged strip here,
        naming the file, rather than half-way through a registration.
    series : int, optional
        The image series of a multi-series (OME-)TIFF. Default the first, with a note
        in :attr:`Stack.notes` saying that others exist.
    rounds : bool
        Read a file of rounds: a 4D (round, z, y, x) array (an ImageJ TZYX hyperstack,
        a 4D Zarr array), ``ndim`` 4. Without it a 4D file is refused.
    channels : bool
        Read a TIFF of channels (:func:`channel_count` > 1: an ImageJ ZCYX hyperstack, an
        OME-TIFF CZYX...) as a 4D (channel, z, y, x) array, ``ndim`` 4, in memory.

    Raises
    ------
    FidregError
        Missing, empty, non-TIFF or corrupt file, not a 2D or 3D image, or no such series.
    """
    path = Path(path)
    if path.is_dir() and is_zarr(path):
        return _read_zarr(path, rounds)
    _check_exists(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] not in (b"II", b"MM"):
        raise FidregError(f"{path}: not a TIFF file")
    notes: list[str] = []
    try:
        with tifffile.TiffFile(path) as tif:
            n_series = len(tif.series)
            if n_series == 0:
                raise FidregError(f"{path}: cannot read TIFF (no image in the file: damaged?)")
            index = 0 if series is None else int(series)
            if not 0 <= index < n_series:
                raise FidregError(f"{path}: has {n_series} image series (0 to {n_series - 1}), not series {index}")
            if n_series > 1 and series is None:
                notes.append(f"{path.name} holds {n_series} image series; series 0 was read (choose with --series)")
            _check_not_cut_short(tif, path)
            _check_one_sample(tif.series[index], path)
            voxel = _voxel_size(tif)
            tif_axes = tif.series[index].axes
            other = [a for a, n in zip(tif_axes, tif.series[index].shape) if a in _NOT_Z and n > 1]
            if channels and _channels_in(tif_axes, tif.series[index].shape) < 2:
                raise FidregError(f"{path}: not a file of channels (its axes are {tif_axes})")
            if other and not rounds and not channels:
                notes.append(
                    f"{path.name}: its pages are {', '.join(_NOT_Z[a] for a in other)} according to the file, "
                    "and were registered as z planes (split such a file into one stack per round or channel)"
                )
            compressed = any(p.compression != 1 for p in tif.series[index].pages[:1])
            if lazy and index == 0 and not compressed and not channels:
                data = _lazy(path, tif)
            else:
                data = tif.series[index].asarray(maxworkers=os.cpu_count() or 1)
            if index == 0:
                _check_complete(tif, path, data.shape)
    except FidregError:
        raise
    except Exception as exc:  # tifffile and the codecs raise many types for damaged files
        raise FidregError(f"{path}: cannot read TIFF ({type(exc).__name__}: {exc})") from None
    if channels:
        data = _channels_first(np.asarray(data), tif_axes, str(path))
        return Stack(data=data, voxel_size=voxel, name=stem(path), path=path, ndim=4, notes=notes)
    if not rounds:
        _refuse_channels(tif_axes, data.shape, path)
    if rounds:
        return Stack(data=as_rounds(data, str(path)), voxel_size=voxel, name=stem(path), path=path, ndim=4, notes=notes)
    ndim = _image_ndim(data)
    data = as_volume(data, str(path))
    return Stack(data=data, voxel_size=voxel, name=stem(path), path=path, ndim=ndim, notes=notes)


def as_rounds(data, name: str):
    """``data`` as a 4D (round, z, y, x) array: singleton axes beyond four dropped; else refused."""
    shape = tuple(data.shape)
    if len(shape) > 4 and 1 in shape:
        data = drop_singletons(np.asarray(data), 4)
    if len(data.shape) != 4 or min(data.shape) == 0:
        raise FidregError(f"{name}: expected a 4D (round, z, y, x) file of rounds, got shape {shape}")
    check_dtype(data, name)
    return data


def _channels_in(axes: str, shape) -> int:
    """How many channels of z stacks a TIFF series of ``axes`` and ``shape`` holds (1: none to
    speak of). Channels without a z axis (CYX) are read as planes, with a note: tifffile
    writes a plain z stack given ``imagej=True`` and no axes as ImageJ channels."""
    return int(shape[axes.index("C")]) if "C" in axes and "Z" in axes else 1


def _channels_first(data: np.ndarray, axes: str, name: str) -> np.ndarray:
    """A series' array as (channel, z, y, x): singleton axes dropped, a lone plane a z of 1."""
    keep = [i for i, (a, n) in enumerate(zip(axes, data.shape)) if n > 1 or a in "CZYX"]
    kept = "".join(axes[i] for i in keep)
    data = data.reshape([data.shape[i] for i in keep])
    if "Z" not in kept:
        data, kept = data[..., None, :, :], kept[:-2] + "ZYX"
    if sorted(kept) != sorted("CZYX"):
        raise FidregError(f"{name}: expected channels of (z, y, x) stacks, got axes {axes} of shape {data.shape}")
    return np.transpose(data, [kept.index(a) for a in "CZYX"])


def _refuse_channels(axes: str, shape, path: Path) -> None:
    """A file of several channels is no fiducial stack: say what to do with it."""
    n = _channels_in(axes, shape)
    if n > 1:
        raise FidregError(
            f"{path}: holds {n} channels ({axes}): register its fiducial channel as a stack of its own "
            "(Fiji: Image > Color > Split Channels); 'fidreg apply' corrects every channel of such a file"
        )


def channel_count(path: str | Path) -> int:
    """How many channels a TIFF holds by its own axes (an ImageJ or OME hyperstack), from its
    header; 1 for a plain stack, a Zarr store or an unreadable file."""
    p = Path(path)
    if not p.is_file():
        return 1
    try:
        with tifffile.TiffFile(p) as tif:
            return _channels_in(tif.series[0].axes, tif.series[0].shape)
    except Exception:
        return 1  # read_stack says what is wrong with it


def is_rounds_file(path: str | Path) -> bool:
    """Whether a file holds a 4D (round, z, y, x) array (singleton axes aside), from its header."""
    p = Path(path)
    if p.is_dir() and is_zarr(p):
        try:
            _read_zarr(p, rounds=True)
        except FidregError:
            return False
        return True
    try:
        shape, _ = stack_header(path)
    except FidregError:
        return False
    return len([n for n in shape if n > 1]) == 4 and channel_count(path) == 1  # channels are no rounds


def _image_ndim(data) -> int:
    """2 for a single image as the file holds it (a 2D array), else 3."""
    return 2 if len(data.shape) == 2 else 3


def stack_header(path: str | Path, *, series: int | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the stack in a file, from its header alone (no pixel is read)."""
    path = Path(path)
    if path.is_dir() and is_zarr(path):
        data = _read_zarr(path).data
        return tuple(data.shape), np.dtype(data.dtype)
    _check_exists(path)
    try:
        with tifffile.TiffFile(path) as tif:
            s = tif.series[series or 0]
            _check_not_cut_short(tif, path)
            _check_one_sample(s, path)
            _refuse_channels(s.axes, s.shape, path)
            if not series:
                _check_complete(tif, path, s.shape)
            return tuple(s.shape), np.dtype(s.dtype)
    except FidregError:
        raise
    except Exception as exc:
        raise FidregError(f"{path}: cannot read TIFF ({type(exc).__name__}: {exc})") from None


def _check_exists(path: Path) -> None:
    """A file that is there and not empty (a Zarr store is checked by its reader)."""
    if not path.exists():
        raise FidregError(f"{path}: no such file")
    if path.is_dir():
        raise FidregError(f"{path}: is a folder, neither a TIFF file nor a Zarr store")
    if path.stat().st_size == 0:
        raise FidregError(f"{path}: file is empty")


def _check_one_sample(series, path: Path) -> None:
    """Refuse pages whose samples (RGB) are interleaved: their last axis of 3 is no x axis.
    Separate sample planes (axes 'SYX': what tifffile writes for a stack of 3 or 4 planes
    unless told otherwise) are read as planes."""
    if series.axes.endswith("S") and series.shape[-1] > 1:
        raise FidregError(
            f"{path}: an image of {series.shape[-1]} samples per pixel (RGB?): fidreg reads one channel of "
            "grey levels, (z, y, x)"
        )


def _check_complete(tif: tifffile.TiffFile, path: Path, shape) -> None:
    """Refuse a file that holds fewer planes than its header announces (truncated, a copy cut
    short: tifffile then quietly reads what is left, down to a single plane). ImageJ files
    announce their planes, and tifffile's own (the "shaped" files most Python code writes)
    their shape."""
    plane = int(np.prod(shape[-2:]))
    announced = (tif.imagej_metadata or {}).get("images")
    if not (isinstance(announced, int) and announced > 1) and tif.is_shaped:
        meta = (tif.shaped_metadata or [None])[0]
        dims = meta.get("shape") if isinstance(meta, dict) else None
        if isinstance(dims, (list, tuple)) and dims and all(isinstance(n, int) and n > 0 for n in dims):
            announced = int(np.prod(dims)) // max(plane, 1)  # in planes of the size that was read
    planes = int(np.prod(shape[:-2]))
    if isinstance(announced, int) and announced > 1 and planes < announced:
        raise FidregError(
            f"{path}: truncated or damaged: its header announces {announced} planes, {planes} could be read"
        )


def _check_not_cut_short(tif: tifffile.TiffFile, path: Path) -> None:
    """Refuse a file whose structure points past its end: cut short (a copy interrupted, a
    disk full), whatever wrote it. tifffile reads what is left without an error: an OME-TIFF
    whose XML (written last) is gone reads as a stack of unknown axes, one cut in half as a
    single plane. Three places are checked, from the file itself: the first page's
    description (OME-XML, ImageJ or tifffile metadata) lies within the file, the last page
    tifffile could read is the last the file names (its next-page pointer is 0), and the last
    page's pixels end within the file.
    """
    fmt, fh = tif.tiff, tif.filehandle
    if fmt.is_ndpi:  # offsets of their own kind
        return
    size = fh.size

    def ifd(offset: int) -> tuple[list[tuple], int | None]:
        """The tag entries (code, count, value bytes) at ``offset`` and its next-IFD offset."""
        fh.seek(offset)
        (n,) = struct.unpack(fmt.tagnoformat, fh.read(fmt.tagnosize))
        raw = fh.read(n * fmt.tagsize + fmt.offsetsize)
        entries = [struct.unpack(fmt.tagheaderformat, raw[i * fmt.tagsize : (i + 1) * fmt.tagsize]) for i in range(n)]
        tail = raw[n * fmt.tagsize :]
        following = struct.unpack(fmt.offsetformat, tail)[0] if len(tail) == fmt.offsetsize else None
        return [(code, count, value) for code, _, count, value in entries], following

    def cut(what: str) -> FidregError:
        return FidregError(f"{path}: truncated or damaged: {what} past the end of the file ({size} bytes)")

    first = tif.pages.first
    entries, _ = ifd(first.offset)
    for code, count, value in entries:
        if code == 270 and count > fmt.tagoffsetthreshold:  # the description, stored out of line
            (at,) = struct.unpack(fmt.offsetformat, value[: fmt.offsetsize])
            if at + count > size:
                raise cut("its metadata (the first page's description) lies")
    last = tif.pages[len(tif.pages) - 1]
    if getattr(last, "offset", None):  # a page of its own (not a frame that tifffile infers)
        _, following = ifd(last.offset)
        # The last page of a whole file points to no next page (0). tifffile stops, with only a
        # logged warning, at a next page it cannot read (cut inside its IFD, as PIL's files whose
        # IFDs come last are), and a pointer within the file is then no proof of anything.
        if following != 0:
            raise FidregError(
                f"{path}: truncated or damaged: its page {len(tif.pages)} points to a next page "
                f"that cannot be read (the file, {size} bytes, was cut short?)"
            )
    ends = [int(o) + int(n) for o, n in zip(last.dataoffsets, last.databytecounts) if n]
    if ends and max(ends) > size:
        raise cut("the pixels of its last page run")


def series_count(path: str | Path) -> int:
    """How many image series a TIFF file holds (1 for a Zarr store; 0 when unreadable)."""
    path = Path(path)
    if not path.is_file():
        return 1
    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.series)
    except Exception:
        return 0  # read_stack reports what is wrong with it


def is_zarr(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / f).exists() for f in (".zgroup", ".zarray", "zarr.json"))


def _read_zarr(path: Path, rounds: bool = False) -> Stack:
    """An OME-Zarr image (level 0 of the first multiscale) or a plain Zarr array, read lazily."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise FidregError(f"{path}: cannot open Zarr store ({type(exc).__name__}: {exc})") from None
    voxel = None
    if isinstance(node, zarr.Group):
        ms = node.attrs.get("multiscales")
        if not ms:
            raise FidregError(f"{path}: Zarr group without OME 'multiscales' metadata")
        dataset = ms[0]["datasets"][0]
        data = node[dataset["path"]]
        # a scale is a voxel size only when the axes have a unit (NGFF requires a scale,
        # so a store written without a known voxel size carries 1, 1, 1 and no unit)
        axes = ms[0].get("axes", [])
        has_unit = len(axes) >= 3 and all(isinstance(a, dict) and a.get("unit") for a in axes[-3:])
        for t in dataset.get("coordinateTransformations", []):
            if has_unit and t.get("type") == "scale" and len(t.get("scale", [])) >= 3:
                voxel = tuple(float(v) for v in t["scale"][-3:])
    else:
        data = node
    if rounds:
        return Stack(
            data=as_rounds(_Reported(data, path), str(path)), voxel_size=voxel, name=stem(path), path=path, ndim=4
        )
    return Stack(
        data=as_volume(_Reported(data, path), str(path)),
        voxel_size=voxel,
        name=stem(path),
        path=path,
        ndim=3 if len(data.shape) >= 3 else 2,
    )


class _Reported:
    """A lazily read array whose read errors (a damaged chunk) name the file."""

    def __init__(self, array, path: Path):
        self._array, self._path = array, path
        self.shape, self.dtype, self.ndim = tuple(array.shape), np.dtype(array.dtype), len(array.shape)

    def __getitem__(self, key):
        try:
            return np.asarray(self._array[key])
        except Exception as exc:
            raise FidregError(f"{self._path}: cannot read data ({type(exc).__name__}: {exc})") from None

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def reshape(self, *shape):
        return np.asarray(self).reshape(*shape)


def _lazy(path: Path, tif: tifffile.TiffFile):
    """A memory map of an uncompressed stack; where its layout does not allow one (strips
    not contiguous, or a truncated file), the data read at once, so that a damaged file is
    reported here."""
    try:
        return tifffile.memmap(path, mode="r")
    except Exception:
        return tif.series[0].asarray(maxworkers=os.cpu_count() or 1)


def _voxel_size(tif: tifffile.TiffFile) -> tuple[float, float, float] | None:
    """(z, y, x) voxel size in µm from OME or ImageJ metadata, else None."""
    if tif.is_ome and tif.ome_metadata:
        vs = _ome_voxel_size(tif.ome_metadata)
        if vs is not None:
            return vs
    ij = tif.imagej_metadata
    page = tif.pages[0]
    try:
        xres = page.tags["XResolution"].value
        yres = page.tags["YResolution"].value
    except KeyError:
        return None
    if not ij:
        return None
    unit = str(ij.get("unit", "")).strip().lower().replace("\\u00b5", "µ")
    scale = _UNITS_UM.get(unit)
    if scale is None or not xres[0] or not yres[0]:
        return None
    sx = xres[1] / xres[0] * scale
    sy = yres[1] / yres[0] * scale
    sz = float(ij.get("spacing", 1.0)) * scale
    return (sz, sy, sx)


def _ome_voxel_size(xml: str) -> tuple[float, float, float] | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    out = []
    for axis in ("Z", "Y", "X"):
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        scale = _UNITS_UM.get(unit.lower() if unit else "µm", None)
        if value is None or scale is None:
            if axis == "Z":
                out.append(1.0)
                continue
            return None
        out.append(float(value) * scale)
    return tuple(out)  # type: ignore[return-value]


def voxel_size_from_scale(scale) -> tuple[float, float, float] | None:
    """A napari layer's (z, y, x) scale as a voxel size in µm; None for napari's default
    all-ones scale, which says only that no physical size is known."""
    if scale is None or len(scale) < 3:
        return None
    voxel = tuple(float(s) for s in list(scale)[-3:])
    return None if all(v == 1.0 for v in voxel) else voxel  # type: ignore[return-value]
