"""npe2 sample data: the synthetic fiducial pair with a known shift."""

from __future__ import annotations

import numpy as np

from .core.synthetic import fiducial_pair

SAMPLE_SHIFT = (1.3, -4.6, 7.25)
SAMPLE_SHAPE = (40, 256, 256)
SAMPLE_VOXEL_SIZE = (0.2, 0.15, 0.15)
REFERENCE_NAME = "fiducials reference"
MOVING_NAME = "fiducials moving"


def sample_pair():
    """Reference (green) and moving (magenta) fiducial stacks; the moving one is
    displaced so that the shift to apply to it is ``SAMPLE_SHIFT`` (dz, dy, dx) px."""
    pair = fiducial_pair(SAMPLE_SHAPE, SAMPLE_SHIFT, seed=11)
    # Contrast from the data's percentiles: hot pixels would otherwise set the top of the range.
    limits = tuple(float(v) for v in np.percentile(pair.reference, (50, 99.95)))
    common = {"scale": SAMPLE_VOXEL_SIZE, "blending": "additive", "contrast_limits": limits}
    truth = {"fidreg_true_shift": SAMPLE_SHIFT, "fidreg_role": None}
    return [
        (
            pair.reference,
            {**common, "name": REFERENCE_NAME, "colormap": "green", "metadata": {**truth, "fidreg_role": "reference"}},
            "image",
        ),
        (
            pair.moving,
            {**common, "name": MOVING_NAME, "colormap": "magenta", "metadata": {**truth, "fidreg_role": "moving"}},
            "image",
        ),
    ]
