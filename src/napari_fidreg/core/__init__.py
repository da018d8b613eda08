"""The registration engine: numpy, scipy and scikit-image only (no Qt, napari or magicgui).

Public API::

    from napari_fidreg.core import register, warp, Params, Registration
    reg = register(reference, moving, block_size=256)
    corrected = warp(moving, reg)            # or any other channel of that round
    reg.save("round3.shifts.json")

Sign convention: a shift (dz, dy, dx) is what to apply to the moving stack to
align it onto the reference (scikit-image's convention); axes are (z, y, x).
"""

from .correlate import ShiftEstimate, correlate
from .errors import FidregError
from .io import Stack, read_stack, write_stack
from .params import Params, parse_subvolume
from .qc import alignment_score, projections
from .register import Progress, iter_register, register
from .result import SIGN_CONVENTION, Block, Registration
from .warp import ShiftField, iter_warp, warp

__all__ = [
    "SIGN_CONVENTION",
    "Block",
    "FidregError",
    "Params",
    "Progress",
    "Registration",
    "ShiftEstimate",
    "ShiftField",
    "Stack",
    "alignment_score",
    "correlate",
    "iter_register",
    "iter_warp",
    "parse_subvolume",
    "projections",
    "read_stack",
    "register",
    "warp",
    "write_stack",
]
