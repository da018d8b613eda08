"""Checks a command makes before any computation: outputs, cluster spec, parameters vs stacks.

Each problem becomes one :class:`FidregError` line in words a user understands,
found before minutes of work rather than after; inputs are never written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .core.errors import FidregError
from .core.io import stack_header
from .core.params import Params, Subvolume
from .core.register import iter_register


def check_out_dir(out: Path, *, given: Path | None = None) -> None:
    """``out`` is (or can be made) a folder this process can write into: a temporary folder is
    made and removed where ``out`` would go (permissions alone do not tell: /proc, a read-only
    mount, an ACL). ``given``: the ``--out`` the user typed when ``out`` is its folder (a file's
    ``--out``), which the messages then name."""
    shown = given or out
    if given is None and out.exists() and not out.is_dir():
        raise FidregError(f"--out {out} is a file, not a folder: choose a folder for the results")
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise FidregError(f"--out {shown}: {existing} is a file, so no folder can be made there")
    if existing is None:
        return
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fidreg-probe-", dir=existing))
    except PermissionError:
        raise FidregError(f"--out {shown}: cannot write into {existing} (permission denied)") from None
    except OSError as exc:
        # /proc answers "No such file or directory" for a folder that is there: say what it means
        reason = exc.strerror or str(exc)
        raise FidregError(f"--out {shown}: cannot write into {existing}: it takes no new files ({reason})") from None


def check_output_file(out: Path, inputs: list[Path]) -> None:
    """``out`` is a file path that is none of ``inputs`` and whose folder can be written."""
    if out.is_dir():
        raise FidregError(f"--out {out} is a folder: give the path of the file to write")
    for p in inputs:
        if out.resolve() == p.resolve() or (out.exists() and p.exists() and os.path.samefile(out, p)):
            raise FidregError(f"--out {out} is an input of this command; it would be overwritten: choose another path")
    check_out_dir(out.parent, given=out)


def outputs_are_not_inputs(outputs: list[Path], inputs: list[Path]) -> None:
    resolved = {p.resolve() for p in inputs}
    for p in outputs:
        if p.resolve() in resolved:
            raise FidregError(f"output {p} would overwrite an input; choose another --out")


def parse_cluster(spec: str) -> int:
    """The worker count of ``--cluster local:N``."""
    head, _, count = spec.partition(":")
    if head != "local" or not count.isdigit() or int(count) < 1:
        raise FidregError(f"--cluster {spec!r}: expected local:N with N >= 1 worker processes (e.g. local:4)")
    return int(count)


def check_params_fit(reference: Path, movings: list[Path], params: Params, subvolume: Subvolume | None) -> None:
    """Refuse, once, parameters that fit none of the stacks (a block larger than every stack...).

    Reads only the files' headers: every check of :func:`iter_register` runs at its
    call, on stand-in arrays of the right shape and dtype that hold no data.
    """
    ref_shape, ref_dtype = stack_header(reference)
    messages = []
    for moving in movings:
        try:
            shape, dtype = stack_header(moving)
        except FidregError:
            return  # that stack fails on its own, with its own message; the others may run
        try:
            iter_register(_stand_in(ref_shape, ref_dtype), _stand_in(shape, dtype), params, subvolume=subvolume)
        except FidregError as exc:
            messages.append(str(exc))
        else:
            return
    if len(movings) == 1 and messages:
        raise FidregError(naming_files(messages[0], reference, movings[0]))
    if messages and len(set(messages)) == 1:
        raise FidregError(f"{naming_files(messages[0], reference, None)} (for every moving stack)")
    if messages:
        raise FidregError(f"the parameters fit none of the moving stacks: {messages[0]}, ...")


def naming_files(text: str, reference: Path, moving: Path | None) -> str:
    """An engine's message about 'the reference' or 'the moving' stack, naming its file."""
    for label, path in (("reference", reference), ("moving", moving)):
        if path is not None and (text.startswith(f"{label}:") or text.startswith(f"{label} ")):
            return f"{path} ({label}){text[len(label) :]}"
    return text


def _stand_in(shape, dtype) -> np.ndarray:
    return np.broadcast_to(np.zeros(1, dtype=dtype), shape)
