#!/usr/bin/env bash
# Install napari-fidreg into .venv and register the built-in synthetic pair (known shift).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
exec "$ROOT/.venv/bin/fidreg" demo --out "${1:-$ROOT/fidreg-demo}"
