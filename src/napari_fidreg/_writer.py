"""npe2 writer: an image layer to TIFF, with its scale as voxel size (µm)."""

from __future__ import annotations

from typing import Any

from .core.io import voxel_size_from_scale
from .core.writers import write_stack


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write one 3D image layer; returns the written path (npe2 single-layer writer)."""
    voxel = voxel_size_from_scale(meta.get("scale"))
    if not str(path).lower().endswith((".tif", ".tiff")):
        path = f"{path}.tif"
    write_stack(path, data, voxel_size=voxel)
    return [str(path)]
