# Sourced by run.sh and test.sh: a virtual environment with the project installed, reinstalled only
# when pyproject.toml changes. Usage: IDSVC_EXTRAS="test" source scripts/setup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${IDSVC_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "idsvc needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

extras="${IDSVC_EXTRAS:-}"
target="$ROOT"; [ -n "$extras" ] && target="$ROOT[$extras]"
stamp="$VENV/.idsvc-installed"
wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "installing idsvc${extras:+ with [$extras]} into $VENV ..."
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e "$target"
  echo "$wanted" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
