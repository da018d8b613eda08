"""napari-fidreg: register 3D fiducial stacks with normalized 3D cross-correlation."""

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
