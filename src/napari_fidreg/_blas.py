"""One OpenBLAS thread for the processes fidreg runs itself (the command, the benchmark).

The engine runs its own threads (planes, blocks) and calls BLAS only for tiny products, but
each OpenBLAS (numpy has one, scipy another) starts a thread per core when it loads and
after its calls, and those spin for a while beside the engine's: 10 % of a small job's CPU
time on two cores (perf), gone with one thread. This module imports nothing heavy, so that
it can run before numpy and scipy load their OpenBLAS, which reads the setting then only.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")  # what OpenBLAS reads


def one_blas_thread() -> bool:
    """Ask OpenBLAS for one thread unless the user chose a number through any variable it reads;
    whether it asked. Only a process that has not loaded numpy yet is affected."""
    if any(os.environ.get(v) for v in THREAD_VARIABLES):
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return True
