"""What the libraries log about a file that fidreg already reports as one error line."""

from __future__ import annotations

import logging


def quiet_file_libraries() -> None:
    """Silence, in this process, the logs that only repeat fidreg's own error line.

    A damaged TIFF makes tifffile log its own account before the error fidreg turns into
    one line. zarr reads chunks on its own asyncio loop: when one chunk is corrupt, the
    reads still in flight are left at exit and asyncio logs them with tracebacks ("Task
    was destroyed but it is pending!"), now and then, after that line (seen once in CI).
    Called by the CLI for its process and, on fidreg's own dask cluster, for each worker.
    """
    for name in ("tifffile", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
