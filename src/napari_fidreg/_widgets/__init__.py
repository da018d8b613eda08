"""napari widgets: thin layers over :mod:`napari_fidreg.core`."""

from .registration import RegistrationWidget
from .series import SeriesWidget

__all__ = ["RegistrationWidget", "SeriesWidget"]
