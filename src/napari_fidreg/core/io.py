"""Files in and out: TIFF / OME-TIFF stacks with voxel size, atomic writes.

Every writer writes to a temporary file beside the target and renames it into
place (``os.replace``), so a crash never leaves a half-written output and an
existing file is only ever replaced whole. Readers turn every failure into a
:class:`FidregError` naming the file.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from .errors import FidregError
from .validate import as_volume

TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf")
ZARR_SUFFIXES = (".ome.zarr", ".zarr")
_UNITS_UM = {"um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "mm": 1e3}


@dataclass
class Stack:
    """A stack read from disk: data (z, y, x), voxel size in µm or None, a display name."""

    data: np.ndarray
    voxel_size: tuple[float, float, float] | None
    name: str
    path: Path


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


def read_stack(path: str | Path, *, lazy: bool = False) -> Stack:
    """Read a 3D TIFF/OME-TIFF stack and its voxel size.

    Parameters
    ----------
    path : path to a .tif/.tiff/.ome.tif file
    lazy : bool
        Memory-map the file when its layout allows (uncompressed, contiguous),
        else return a zarr view that reads chunks on demand; the data are then
        read only where the registration looks.

    Raises
    ------
    FidregError
        Missing, empty, non-TIFF or corrupt file, or not a 3D stack.
    """
    path = Path(path)
    if not path.exists():
        raise FidregError(f"{path}: no such file")
    if path.is_dir():
        if is_zarr(path):
            return _read_zarr(path)
        raise FidregError(f"{path}: is a folder, neither a TIFF file nor a Zarr store")
    if path.stat().st_size == 0:
        raise FidregError(f"{path}: file is empty")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] not in (b"II", b"MM"):
        raise FidregError(f"{path}: not a TIFF file")
    try:
        with tifffile.TiffFile(path) as tif:
            voxel = _voxel_size(tif)
            if lazy:
                data = _lazy(path, tif)
            else:
                data = tif.asarray()
    except FidregError:
        raise
    except Exception as exc:  # tifffile raises many types for damaged files
        raise FidregError(f"{path}: cannot read TIFF ({type(exc).__name__}: {exc})") from None
    data = as_volume(data, str(path))
    return Stack(data=data, voxel_size=voxel, name=stem(path), path=path)


def is_zarr(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / f).exists() for f in (".zgroup", ".zarray", "zarr.json"))


def _read_zarr(path: Path) -> Stack:
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
        for t in dataset.get("coordinateTransformations", []):
            if t.get("type") == "scale" and len(t.get("scale", [])) >= 3:
                voxel = tuple(float(v) for v in t["scale"][-3:])
    else:
        data = node
    return Stack(data=as_volume(data, str(path)), voxel_size=voxel, name=stem(path), path=path)


@contextmanager
def zarr_writer(path: str | Path, shape, dtype, *, voxel_size=None, chunk_yx: int = 512):
    """Yield a writable OME-Zarr (NGFF 0.4, one level) array; moved into place on success.

    Written into a temporary folder beside ``path``; an existing store at ``path`` is
    replaced only once the new one is complete.
    """
    import shutil

    import zarr

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        arr = group.create_array("0", shape=tuple(shape), dtype=np.dtype(dtype), chunks=(1, chunk_yx, chunk_yx))
        scale = [1.0, 1.0, 1.0] if voxel_size is None else [float(v) for v in voxel_size]
        unit = {"unit": "micrometer"} if voxel_size is not None else {}
        group.attrs["multiscales"] = [
            {
                "version": "0.4",
                "name": path.name,
                "axes": [{"name": n, "type": "space", **unit} for n in "zyx"],
                "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            }
        ]
        yield arr
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _lazy(path: Path, tif: tifffile.TiffFile):
    try:
        return tifffile.memmap(path, mode="r")
    except Exception:
        import zarr

        return zarr.open(tif.aszarr(), mode="r")


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


def _tiff_kwargs(dtype, voxel_size, nbytes: int) -> dict:
    """tifffile options: ImageJ hyperstack with voxel size (µm) for the types ImageJ
    reads (uint8, uint16, float32), a plain (Big)TIFF with ZYX axes otherwise."""
    if np.dtype(dtype) in (np.uint8, np.uint16, np.float32):
        meta: dict = {"axes": "ZYX"}
        kwargs: dict = {"imagej": True, "metadata": meta}
        if voxel_size is not None:
            sz, sy, sx = (float(v) for v in voxel_size)
            meta.update(spacing=sz, unit="um")
            kwargs["resolution"] = (1.0 / sy, 1.0 / sx)
        return kwargs
    return {"metadata": {"axes": "ZYX"}, "bigtiff": nbytes > 3_900_000_000}


def write_stack(path: str | Path, data: np.ndarray, *, voxel_size=None, compress: bool = False) -> Path:
    """Write a (z, y, x) stack as an ImageJ-compatible TIFF, atomically.

    The voxel size (µm) goes into the ImageJ metadata (spacing, resolution,
    unit) so that Fiji, napari and this package read it back.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.dtype.kind not in "uif" or data.dtype.itemsize > 8:
        raise FidregError(f"{path}: cannot write data of type {data.dtype} as TIFF")
    kwargs = _tiff_kwargs(data.dtype, voxel_size, data.nbytes)
    kwargs["photometric"] = "minisblack"
    if compress:
        kwargs["compression"] = "zlib"
    return _atomic(path, lambda tmp: tifffile.imwrite(tmp, data, **kwargs))


@contextmanager
def stack_writer(path: str | Path, shape, dtype, *, voxel_size=None):
    """Yield a writable memory-mapped TIFF of ``shape``; renamed into place on success.

    Lets a corrected stack larger than memory be written plane by plane. The file is
    ImageJ-compatible (with the voxel size) for uint8/uint16/float32, plain TIFF
    otherwise; on error the partial file is removed and ``path`` is untouched.
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise FidregError(f"{path}: cannot write data of type {dtype} as TIFF")
    kwargs = _tiff_kwargs(dtype, voxel_size, int(np.prod(shape)) * dtype.itemsize)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        mm = tifffile.memmap(tmp, shape=tuple(shape), dtype=dtype, **kwargs)
        yield mm
        mm.flush()
        del mm
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to ``path`` atomically."""
    return _atomic(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def _atomic(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def voxel_size_from_scale(scale) -> tuple[float, float, float] | None:
    """A napari layer's (z, y, x) scale as a voxel size in µm; None for napari's default
    all-ones scale, which says only that no physical size is known."""
    if scale is None or len(scale) < 3:
        return None
    voxel = tuple(float(s) for s in list(scale)[-3:])
    return None if all(v == 1.0 for v in voxel) else voxel  # type: ignore[return-value]
