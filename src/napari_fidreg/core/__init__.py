"""The registration engine: numpy, scipy and numba only (no Qt, napari, magicgui or plotting).

Public API::

    from napari_fidreg.core import register, warp, read_stack
    reg = register(reference, moving, block_size=256)   # Params fields as keywords
    corrected = warp(moving, reg)                      # or any other channel of that round
    reg.save("round3.shifts.json")                     # Registration.load() reads it back

* :func:`register` / :func:`iter_register` measure the shift of a moving stack onto
  a reference (global and per block); :class:`Params` holds the algorithm's
  parameters; the result is a :class:`Registration` (JSON in and out) whose
  :class:`Block` records hold the per-block shifts.
* :func:`register_series` / :func:`iter_register_series`: every round of a series
  onto one reference, a :class:`Round` each (its registration or its error).
* :func:`warp` / :func:`iter_warp` apply a registration (or a plain shift) to any stack;
  :func:`map_points` maps spot positions of a moving round into the reference frame
  (through the inverse of the block field).
* :func:`read_stack` / :func:`write_stack` read and write TIFF/OME-TIFF/Zarr stacks
  with their voxel size (:class:`Stack`).
* :func:`projections` and :func:`alignment_score`: numbers and images for QC.
* The ``iter_*`` generators yield :class:`Progress` ticks; every error about the
  input is a :class:`FidregError` with a one-line message.

Sign convention (:data:`SIGN_CONVENTION`): a shift (dz, dy, dx) is what to apply to
the moving stack to align it onto the reference (scikit-image's convention); axes
are (z, y, x).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

# Each name is imported from its module when first used (PEP 562): a command or a napari
# reader that needs only the TIFF reader does not pay for scipy and numba (0.5 s), and
# ``fidreg --help`` starts in a tenth of that.
_EXPORTS = {
    "SIGN_CONVENTION": "result",
    "Block": "result",
    "FidregError": "errors",
    "Params": "params",
    "Progress": "progress",
    "Registration": "result",
    "Round": "series",
    "Stack": "io",
    "alignment_score": "qc",
    "iter_register": "register",
    "iter_register_series": "series",
    "iter_warp": "warp",
    "map_points": "points",
    "projections": "qc",
    "read_stack": "io",
    "register": "register",
    "register_series": "series",
    "warp": "warp",
    "write_stack": "writers",
}
__all__ = [
    "SIGN_CONVENTION",
    "Block",
    "FidregError",
    "Params",
    "Progress",
    "Registration",
    "Round",
    "Stack",
    "alignment_score",
    "iter_register",
    "iter_register_series",
    "iter_warp",
    "map_points",
    "projections",
    "read_stack",
    "register",
    "register_series",
    "warp",
    "write_stack",
]  # the keys of _EXPORTS (a test keeps them so)

if TYPE_CHECKING:  # what type checkers and editors see
    from .errors import FidregError
    from .io import Stack, read_stack
    from .params import Params
    from .points import map_points
    from .progress import Progress
    from .qc import alignment_score, projections
    from .register import iter_register, register
    from .result import SIGN_CONVENTION, Block, Registration
    from .series import Round, iter_register_series, register_series
    from .warp import iter_warp, warp
    from .writers import write_stack


class _Package(types.ModuleType):
    """This package, with one rule: importing the submodule ``register`` or ``warp`` does not
    bind it over the function of the same name (Python binds an imported submodule as an
    attribute of its package; the eager ``from .register import register`` used to bind the
    function back right after)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            return  # the name is the function's; the module stays in sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
