#!/usr/bin/env bash
# Install everything (system packages for a virtual display too) and run the whole test suite.
# napari tests need a real OpenGL context: they run under Xvfb with the xcb Qt platform.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh" testing
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export QT_QPA_PLATFORM=xcb
cd "$ROOT"
"$ROOT/.venv/bin/ruff" check src tests benchmarks docs
exec xvfb-run -a -s "-screen 0 1600x1200x24" "$ROOT/.venv/bin/python" -m pytest -p no:cacheprovider "$@"
