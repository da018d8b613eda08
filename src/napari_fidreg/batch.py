"""Many moving stacks (rounds, fields) against a reference, in parallel (threads, or dask.distributed).

Each task reads its own files and writes its own outputs (``pipeline.register_files``):
nothing but paths and a small summary travel between the client and the workers, which
is what scales (shipping in-memory arrays to a cluster was 5x slower and 4x the memory
in the design measurements).

Schedulers: ``None`` (default) registers in this process: one stack after the other
when one registration fills the machine (``workers`` threads each; a 2-core machine),
else side by side on a thread pool (no dask needed: its import alone was 0.14 s of a
batch). Unless ``workers`` is given, small stacks (up to ``SMALL_STACK`` voxels, such as
Bintu's 39 x 168 x 145 rounds) run side by side with one thread each: their Python parts
(QC image, writing) then overlap another stack's computation, where two threads on one
small stack left a core idle (19 Bintu rounds: 4.0 -> 3.3 s on 2 cores).
``"local:N"`` starts a ``LocalCluster`` with N worker processes; ``"tcp://host:port"``
uses an existing dask.distributed scheduler (the workers must see the same file paths).
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._logs import quiet_file_libraries
from .core.drift import natural_key
from .core.errors import FidregError
from .core.io import TIFF_SUFFIXES, is_zarr, stack_header, stem
from .core.params import DEFAULT_WORKERS, Params
from .core.progress import Progress, ProgressFn
from .core.series import Round

STAGE = "stacks registered"


@dataclass
class Outcome(Round):
    """What one task returns: a :class:`~napari_fidreg.core.series.Round` (its registration,
    or the error that stopped it) and the files written; ``kept`` when ``--skip-existing``
    kept a complete result set of an earlier run instead."""

    outputs: list[str] = field(default_factory=list)
    kept: bool = False

    @property
    def moving(self) -> str:
        return self.name

    @property
    def global_shift(self) -> tuple[float, float, float] | None:
        return None if self.registration is None else self.registration.global_shift


@dataclass(frozen=True)
class Job:
    """One moving stack to register onto its reference, results into ``out_dir``."""

    reference: Path
    moving: Path
    out_dir: Path
    label: str = ""
    """What its progress ticks are said of (default the moving stack's name)."""

    def said(self, progress: ProgressFn) -> ProgressFn:
        return (lambda tick: progress(tick.about(self.label))) if self.label else progress


RESULT_SUFFIXES = (".registered.tif", ".registered.tiff", ".registered.ome.zarr")


def is_result_file(path: Path) -> bool:
    """A corrected stack written by this package (a result, never a moving stack)."""
    return path.name.lower().endswith(RESULT_SUFFIXES)


def stacks_in(folder: Path, pattern: str | None = None) -> list[Path]:
    """The TIFF files and Zarr stores of ``folder`` (whose names match ``pattern``), in round order."""
    found = [q for q in folder.iterdir() if q.name.lower().endswith(TIFF_SUFFIXES) or is_zarr(q)]
    if pattern:
        found = [q for q in found if fnmatch.fnmatchcase(q.name, pattern)]
    return sorted(found, key=lambda q: natural_key(q.name))


def expand_moving(
    items: Iterable[str | Path], reference: str | Path, *, pattern: str | None = None
) -> tuple[list[Path], list[Path]]:
    """Files, folders (every TIFF or Zarr store inside) and glob patterns -> moving stacks in round order.

    Folders are listed in natural order (``H2R2`` before ``H10R10``); ``pattern``
    (a glob on the file name, ``*_beads.tif``) filters what folders hold, not the
    files named one by one. Returns ``(movings, skipped)``. The reference is left out, and so are the corrected
    stacks of an earlier run (``*.registered.tif``: registering them again would read a
    file that this run rewrites); a path that exists is taken literally even when its
    name holds glob characters (``weird[1].tif``).
    """
    ref = Path(reference).resolve()
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir() and not is_zarr(p):
            found += stacks_in(p, pattern)
        elif not p.exists() and any(ch in str(item) for ch in "*?["):
            matches = sorted((Path(m) for m in glob.glob(str(item))), key=lambda q: natural_key(q.name))
            if not matches:
                raise FidregError(f"{item}: no file matches this pattern")
            found += matches
        else:
            found.append(p)
    out, skipped, seen = [], [], set()
    for p in found:
        key = p.resolve()
        if key == ref or key in seen:
            continue
        seen.add(key)
        (skipped if is_result_file(p) else out).append(p)
    if not out:
        if pattern:
            raise FidregError(f"no moving stack to register: no file of the folders matches --pattern {pattern!r}")
        raise FidregError("no moving stack to register (only the reference, or earlier results, were given?)")
    return out, skipped


def register_task(job: Job, params: dict[str, Any], options: dict[str, Any]) -> Outcome:
    """One registration, file to file; errors become part of the outcome (never raised)."""
    from .pipeline import register_files

    try:
        reg, written = register_files(job.reference, job.moving, job.out_dir, Params.from_dict(params), **options)
    except Exception as exc:  # noqa: BLE001 - one stack's failure must not stop the batch
        msg = str(exc) if isinstance(exc, FidregError) else f"{type(exc).__name__}: {exc}"
        return Outcome(str(job.moving), error=msg)
    return Outcome(str(job.moving), registration=reg, outputs=[str(p) for p in written])


OutcomeFn = Callable[[int, Outcome], None]
"""Called in the calling thread with a job's index and outcome as soon as it is done."""


def run_batch(
    jobs: list[Job],
    params: Params,
    *,
    scheduler: str | None = None,
    options: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    on_outcome: OutcomeFn | None = None,
    skip_existing: bool = False,
) -> list[Outcome]:
    """Register every job's moving stack onto its reference; outcomes in the order of ``jobs``.

    ``options`` are keywords of :func:`napari_fidreg.pipeline.register_files`
    (``workers`` among them: threads per registration). ``progress`` receives a
    ``stacks registered`` tick per finished stack and, when the stacks are
    registered in this process, each stack's own ticks (said of its name).
    ``on_outcome(index, outcome)`` is called as each stack finishes.
    ``skip_existing`` keeps the complete result set of an earlier run made with the
    same reference, parameters and region (:func:`kept_outcome`) instead of redoing it.
    """
    refuse_name_clashes(jobs)
    progress = progress or (lambda tick: None)
    on_outcome = on_outcome or (lambda i, o: None)
    count = progress if len(jobs) > 1 else (lambda tick: None)  # "1 of 1 stacks" says nothing
    options = options or {}
    if options.get("workers") is None:
        options = {**options, "workers": threads_per_stack(jobs if scheduler is None else [])}
    workers = int(options["workers"])
    results: list[Outcome | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        kept = kept_outcome(job, params, options) if skip_existing else None
        if kept is None:
            todo.append(i)
        else:
            results[i] = kept
    total, done = len(jobs), [len(jobs) - len(todo)]
    if done[0]:
        count(Progress(STAGE, done[0], total))
    for i, outcome in enumerate(results):
        if outcome is not None:
            on_outcome(i, outcome)

    def finished(k: int, outcome: Outcome) -> None:
        results[todo[k]] = outcome
        done[0] += 1
        on_outcome(todo[k], outcome)
        count(Progress(STAGE, done[0], total))

    args = [(jobs[i], params.to_dict(), options) for i in todo]
    if args and scheduler is None:
        n = stacks_side_by_side(workers)
        (_run_here if n == 1 or len(args) == 1 else _run_threads)(args, n, progress, finished)
    elif args:
        _run_distributed(args, scheduler, workers, finished)
    return results  # type: ignore[return-value]


def stacks_side_by_side(workers: int) -> int:
    """How many registrations of ``workers`` threads each a batch in this process runs at once:
    as many as the machine has room for (one at a time on a 2-core machine with 2 threads each)."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


_CASELESS = sys.platform in ("darwin", "win32")


def refuse_name_clashes(jobs: list[Job]) -> None:
    """Refuse, before any work, two moving stacks whose result sets would have the same names
    in the same folder (``fov2/H2R2.tif`` and ``fov3/H2R2.tif``, or ``a.tif`` and ``a.tiff``):
    the one finished last would silently replace the other's results."""
    from .outputs import result_name

    seen: dict[tuple[str, str], Path] = {}
    for job in jobs:
        name = result_name(Path(job.moving))
        # names that differ in case only clash where file names ignore it (macOS, Windows)
        key = (os.path.normcase(os.path.realpath(job.out_dir)), name.casefold() if _CASELESS else name)
        first = seen.setdefault(key, Path(job.moving))
        if Path(first).resolve() != Path(job.moving).resolve():
            raise FidregError(
                f"{first} and {job.moving} would both write their results as "
                f"{name}.* into {job.out_dir}: register them into different --out "
                "folders (one per field: --reference-round), or rename one"
            )


SMALL_STACK = 16 * 2**20  # voxels (e.g. 64 x 512 x 512): up to this, stacks run side by side, a thread each


def threads_per_stack(jobs: list[Job]) -> int:
    """Threads per registration when the user did not say: 1 for a batch of small stacks run
    side by side in this process (one per core), else ``DEFAULT_WORKERS``."""
    if len(jobs) < 2 or (os.cpu_count() or 1) < 2:
        return DEFAULT_WORKERS
    for path in {p for job in jobs for p in (job.reference, job.moving)}:
        try:
            shape, _ = stack_header(path)
        except FidregError:  # an unreadable stack fails in its own task, with its message
            continue
        if math.prod(shape) > SMALL_STACK:
            return DEFAULT_WORKERS
    return 1


def kept_outcome(job: Job, params: Params, options: dict[str, Any]) -> Outcome | None:
    """The outcome of an earlier run's result set for ``job``, if complete and made alike.

    Alike: the same reference (by name), the same parameters (the background scale
    may have been halved by the dense-texture retry), region and voxel size (when one is given); a set lacking a member
    this run writes (its stack, its QC image) or whose JSON does not load is redone.
    """
    from .outputs import complete_result_set, result_name, result_paths

    fmt = options.get("stack_format", "tif")
    paths = result_paths(job.out_dir, result_name(job.moving), stack_format=fmt)
    reg = complete_result_set(
        paths, stack=options.get("write_stack_file", True), qc=options.get("write_qc", True)
    )  # fmt: skip
    if reg is None or reg.reference != stem(job.reference):
        return None
    saved, wanted = reg.params.to_dict(), params.to_dict()
    retried = saved.pop("background_sigma") <= wanted.pop("background_sigma")
    sub = options.get("subvolume")
    same_region = (reg.subvolume is None and sub is None) or (
        reg.subvolume is not None and sub is not None and [list(r) for r in reg.subvolume] == [list(r) for r in sub]
    )
    vs = options.get("voxel_size")
    same_voxel = vs is None or (
        reg.voxel_size is not None and all(abs(a - b) < 1e-9 for a, b in zip(reg.voxel_size, vs))
    )
    if saved != wanted or not retried or not same_region or not same_voxel:
        return None
    written = [p for p in paths.members() if p.exists()]
    return Outcome(str(job.moving), registration=reg, outputs=[str(p) for p in written], kept=True)


def _run_here(args, n: int, progress: ProgressFn, finished) -> None:
    """In this thread, one after the other, each stack's ticks passed on."""
    for k, (job, params, options) in enumerate(args):
        finished(k, register_task(job, params, {**options, "progress": job.said(progress)}))


def _run_threads(args, n: int, progress: ProgressFn, finished) -> None:
    """On ``n`` threads of this process; each outcome handed on as its stack finishes."""
    lock = threading.Lock()

    def said(tick: Progress) -> None:
        with lock:  # ticks come from the worker threads
            progress(tick)

    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="fidreg-stack")
    futures: dict = {}
    reported: set = set()
    try:
        futures = {
            pool.submit(register_task, job, p, {**o, "progress": job.said(said)}): k
            for k, (job, p, o) in enumerate(args)
        }
        for future in as_completed(futures):
            with lock:
                reported.add(future)
                finished(futures[future], future.result())
    finally:
        # on Ctrl-C (or an error in ``finished``) the stacks not yet started are dropped: only
        # those running finish, instead of the whole queue
        pool.shutdown(wait=True, cancel_futures=True)
        # and those are reported too: their result sets are written, so the drift table gets
        # their rows (after a Ctrl-C it lagged behind the result sets on disk)
        for future, k in futures.items():
            if future not in reported and future.done() and not future.cancelled():
                with lock, contextlib.suppress(Exception):
                    finished(k, future.result())


def _run_distributed(args, scheduler: str, workers: int, finished) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler.startswith("local:"):
        try:
            n = int(scheduler.split(":", 1)[1])
        except ValueError:
            raise FidregError(f"--cluster {scheduler!r}: expected local:N with N the number of workers") from None
        if n < 1:
            raise FidregError(f"--cluster {scheduler!r}: need at least one worker")
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=max(workers, 1), processes=True,
            dashboard_address=None, host="127.0.0.1",
        )  # fmt: skip
        client = Client(cluster)
        client.run(quiet_file_libraries)  # its workers, as the CLI's process: the outcome says it
    else:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise FidregError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    try:
        futures = [client.submit(register_task, *a, pure=False) for a in args]
        index = {f.key: k for k, f in enumerate(futures)}
        for fut in as_completed(futures):
            finished(index[fut.key], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
