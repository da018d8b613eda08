"""npe2 reader: fiducial TIFF stacks as image layers with their voxel size as scale.

A file of rounds (a 4D (round, z, y, x) TIFF hyperstack or Zarr array) opens as one 4D
layer, its rounds under napari's first slider, scale (1, z, y, x). A TIFF of channels (an
ImageJ ZCYX or OME CZYX hyperstack) opens as one (z, y, x) layer per channel, so that its
fiducial channel can be registered and the others corrected alike.
"""

from __future__ import annotations

from pathlib import Path

from .core.errors import FidregError
from .core.io import TIFF_SUFFIXES, ZARR_SUFFIXES, channel_count, is_rounds_file, read_stack

SUFFIXES = TIFF_SUFFIXES + ZARR_SUFFIXES


def get_reader(path):
    """Return a reader for .tif/.tiff/.ome.tif files and .zarr/.ome.zarr stores, else None."""
    if isinstance(path, list):
        if not path:
            return None
        if not all(str(p).lower().rstrip("/").endswith(SUFFIXES) for p in path):
            return None
        return read_stacks
    if not str(path).lower().rstrip("/").endswith(SUFFIXES):
        return None
    return read_stacks


def read_stacks(path):
    """Layer data tuples, one per file: (data, {name, scale, metadata}, 'image').

    A file that is not a 3D stack (a 2D image, say) is left to other readers by
    raising, which napari reports, rather than shown with a wrong axis order.
    """
    paths = path if isinstance(path, list) else [path]
    layers = []
    for p in paths:
        if channel_count(p) > 1:  # a hyperstack of channels: one (z, y, x) layer per channel
            stack = read_stack(Path(p), channels=True)
            for c, data in enumerate(stack.data):
                meta = {"name": f"{stack.name} [channel {c}]",
                        "metadata": {"path": str(stack.path), "voxel_size_um": stack.voxel_size, "channel": c}}  # fmt: skip
                if stack.voxel_size is not None:
                    meta["scale"] = tuple(stack.voxel_size)
                layers.append((data, meta, "image"))
            continue
        rounds = is_rounds_file(p)
        stack = read_stack(Path(p), rounds=rounds)
        meta = {"name": stack.name, "metadata": {"path": str(stack.path), "voxel_size_um": stack.voxel_size}}
        if rounds:
            meta["metadata"]["rounds"] = int(stack.data.shape[0])
            meta["scale"] = (1.0, *(stack.voxel_size or (1.0, 1.0, 1.0)))
        elif stack.voxel_size is not None:
            meta["scale"] = tuple(stack.voxel_size)
        layers.append((stack.data, meta, "image"))
    return layers


__all__ = ["FidregError", "get_reader", "read_stacks"]
