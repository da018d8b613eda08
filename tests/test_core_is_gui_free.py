import subprocess
import sys


def test_importing_the_core_loads_no_qt_napari_or_magicgui():
    code = (
        "import sys, napari_fidreg.core, napari_fidreg.core.register, napari_fidreg.core.warp, napari_fidreg.core.qc;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('napari','qtpy','PyQt5','PyQt6','PySide2','PySide6','magicgui','vispy')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
