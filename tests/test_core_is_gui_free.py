"""The engine (``napari_fidreg.core``) imports no GUI and no plotting library, whichever module is loaded."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import napari_fidreg.core

FORBIDDEN = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "matplotlib", "PIL")


def test_importing_every_core_module_loads_no_gui_or_plotting_library():
    modules = sorted(m.name for m in pkgutil.iter_modules(napari_fidreg.core.__path__, "napari_fidreg.core."))
    assert "napari_fidreg.core.register" in modules and "napari_fidreg.core.kernels" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_core_source_never_names_a_gui_or_plotting_library():
    # an import inside a function would escape the test above until that function runs
    for path in napari_fidreg.core.__path__:
        for file in sorted(Path(path).glob("*.py")):
            text = file.read_text()
            for lib in FORBIDDEN:
                pattern = rf"^\s*(import|from)\s+{lib}(\.|\s|$)"
                assert not re.search(pattern, text, flags=re.M), f"{file.name} imports {lib}"
