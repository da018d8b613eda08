"""Save a result set and re-apply shifts to other layers (images of any dtype, labels, points):
the part of the registration dock that works from a result, kept apart from its layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import FidregError
from ..core.result import Registration
from ..outputs import result_name, result_paths, save_result_set
from . import layers as L
from .jobs import apply_job


def target_layers(viewer) -> list:
    """Layers that shifts can be applied to: 3D image layers (not RGB), labels and points layers."""
    from napari.layers import Image, Labels, Points

    return [
        layer
        for layer in viewer.layers
        if (isinstance(layer, Image) and not layer.rgb or isinstance(layer, (Labels, Points))) and layer.ndim == 3
    ]


class SaveApplyMixin:
    """Save and Apply for :class:`.registration.RegistrationWidget` (uses its fields and worker)."""

    def save(self, folder: Path) -> list[Path]:
        """Write the result set (shifts JSON, blocks CSV, corrected stack, QC image) to ``folder``,
        with the names and content that ``fidreg register`` gives the same stack; blocks rejected
        by hand are saved as such (their reason in the JSON and the CSV)."""
        if self.result is None:
            self._error(FidregError("nothing to save yet: run a registration first"))
            return []
        from ..figures import qc_png

        reg, proj = self.result.registration, self.result.projections
        paths = result_paths(folder, result_name(reg.moving or "moving"))
        title = f"{reg.moving} onto {reg.reference}"
        try:
            written = save_result_set(
                paths,
                reg,
                corrected=self.result.corrected,
                qc=lambda _: qc_png(
                    proj["reference"],
                    proj["before"],
                    proj["after"],
                    title=title,
                    voxel_size=reg.voxel_size,
                    registration=reg,
                ),
            )
        except (FidregError, OSError) as exc:  # an unwritable or full folder: one notification
            self._error(exc if isinstance(exc, FidregError) else FidregError(f"cannot save to {folder}: {exc}"))
            return []
        self._set_status(f"saved to {folder}")
        return written

    def apply_saved(self) -> None:
        """Apply the shifts file (or, when none is chosen, the current result) to the chosen layer.

        A labels layer is corrected with the nearest voxel (``order=0``): its values stay
        labels of the input, its dtype is kept. A points layer (spot localizations, in the
        moving stack's pixels: its data coordinates) is mapped into the reference frame
        through the inverse of the block field (:func:`napari_fidreg.core.map_points`).
        """
        from napari.layers import Labels, Points

        target = self.apply_target.value
        try:
            if target is None:
                raise FidregError("choose the layer to correct")
            path = Path(self.shifts_file.value) if self.shifts_file.value else None
            if path is not None and path.is_file():
                reg = Registration.load(path)
            elif self.result is not None:
                reg = self.result.registration
            else:
                raise FidregError("choose a shifts file (.shifts.json) or run a registration first")
            if isinstance(target, Points):
                self._apply_to_points(target, reg)
                return
            if tuple(target.data.shape[-3:]) != tuple(reg.moving_shape):
                raise FidregError(
                    f"layer '{target.name}' has shape {tuple(target.data.shape)}, the registration was measured on a "
                    f"stack of {tuple(reg.moving_shape)}: apply it to a channel of the same round"
                )
        except FidregError as exc:
            self._error(exc)
            return
        job = apply_job(np.asarray(target.data), reg, order=0 if isinstance(target, Labels) else 1)
        self.worker = self._worker(job, lambda out: self._on_applied(out, target))
        self._set_running(True)
        self.worker.start()

    def _apply_to_points(self, target, reg: Registration) -> None:
        """Points moved into the reference frame at once (no worker: a fixed-point solve of a
        few steps, ~1 s for a million points); every other property of the layer kept."""
        from ..core.points import map_points

        mapped = map_points(reg, np.asarray(target.data, dtype=np.float64))
        data, meta, _ = target.as_layer_data_tuple()
        meta = {**meta, "name": L.registered_name(target.name), "metadata": {**meta.get("metadata", {}),
                "fidreg_role": "registered"}}  # fmt: skip
        if meta["name"] in self.viewer.layers:
            self.viewer.layers.remove(meta["name"])
        self.viewer.add_points(mapped, **meta)
        self._set_status(f"applied to {target.name}: {len(mapped)} points mapped into the reference frame")

    def _on_applied(self, out: np.ndarray, target) -> None:
        from napari.layers import Labels

        name = L.registered_name(target.name)
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        place = {"name": name, "scale": target.scale, "translate": target.translate,
                 "metadata": {"fidreg_role": "registered"}}  # fmt: skip
        if isinstance(target, Labels):
            self.viewer.add_labels(out, **place)
        else:
            self.viewer.add_image(out, colormap=target.colormap.name, blending=target.blending, **place)
        self._set_status(f"applied to {target.name}")
