"""npe2 writer: an image layer to TIFF, with its scale as voxel size (µm)."""

from __future__ import annotations

from typing import Any

from .core.io import write_stack


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write one 3D image layer; returns the written path (npe2 single-layer writer)."""
    scale = meta.get("scale")
    voxel = tuple(float(s) for s in scale[-3:]) if scale is not None and len(scale) >= 3 else None
    if voxel is not None and all(v == 1.0 for v in voxel):
        voxel = None  # napari's default scale: no physical size known
    if not str(path).lower().endswith((".tif", ".tiff")):
        path = f"{path}.tif"
    write_stack(path, data, voxel_size=voxel)
    return [str(path)]
