"""FidregError: a ValueError with a one-line message, which the CLI prints as one line with status 2."""

import subprocess
import sys

import numpy as np
import pytest

from napari_fidreg.cli import main
from napari_fidreg.core import FidregError, Params, read_stack, register


def test_fidreg_error_is_a_value_error():
    assert issubclass(FidregError, ValueError)
    with pytest.raises(ValueError, match="z_taper"):
        Params(z_taper=1.5)
    err = FidregError("moving: stack is empty")
    assert str(err) == "moving: stack is empty" and err.args == ("moving: stack is empty",)


@pytest.mark.parametrize(
    "fail",
    [
        lambda tmp: Params(block_size=-1),
        lambda tmp: Params.from_dict({"workers": 4}),
        lambda tmp: read_stack(tmp / "missing.tif"),
        lambda tmp: register(np.zeros((2, 3, 4, 5)), np.zeros((4, 5, 5))),
    ],
)
def test_engine_errors_are_one_line(tmp_path, fail):
    with pytest.raises(FidregError) as info:
        fail(tmp_path)
    message = str(info.value)
    assert message and "\n" not in message


def test_cli_turns_an_error_into_one_line_and_status_2(tmp_path):
    out = tmp_path / "DIR"
    proc = subprocess.run(
        [sys.executable, "-m", "napari_fidreg.cli", "register", "missing.tif", "other.tif", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("fidreg: error: missing.tif: no such file")
    assert proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1  # one line, no traceback
    assert proc.stdout == ""
    assert not out.exists()


def test_cli_reports_a_bad_parameter_by_name(tmp_path, capsys):
    code = main(["register", str(tmp_path / "missing.tif"), "other.tif", "--out", str(tmp_path), "--z-taper", "1.5"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err == "fidreg: error: z_taper must be in [0, 1], got 1.5\n"
    assert captured.out == ""
