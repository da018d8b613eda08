#!/usr/bin/env bash
# Shared set-up for demo.sh and test.sh: a virtual environment in .venv with the package installed.
# Usage: source scripts/setup_env.sh [extra]   (extra: "testing" installs the test dependencies)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
apt_install() {
  # Install Debian packages that are missing (needs root; skipped silently otherwise).
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then echo "warning: missing system packages ${missing[*]} (run as root to install)" >&2; return 0; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
}
if ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then apt_install python3-venv; fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then "$PY" -m venv "$ROOT/.venv"; fi
"$ROOT/.venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${1:-}" = "testing" ]; then
  apt_install xvfb xauth libgl1-mesa-dri libegl1 libopengl0 libglib2.0-0 libfontconfig1 libdbus-1-3 \
    libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 \
    libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-xkb1
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[testing]" 2>&1 | grep -v -E "^(WARNING|  )" || true
else
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT" 2>&1 | grep -v -E "^(WARNING|  )" || true
fi
"$ROOT/.venv/bin/python" -c "import napari_fidreg.core" # fail early if the install did not work
# numba's kernels compiled now for every common dtype (~30 s the first time, ~1 s once cached),
# not by the first registration of each
"$ROOT/.venv/bin/fidreg" compile --quiet
