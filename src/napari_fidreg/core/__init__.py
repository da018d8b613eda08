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
]
