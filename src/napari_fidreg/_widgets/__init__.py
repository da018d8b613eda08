"""napari widgets: thin layers over :mod:`napari_fidreg.core`."""

from .registration import RegistrationWidget

__all__ = ["RegistrationWidget"]
