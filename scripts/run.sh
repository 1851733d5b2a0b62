#!/usr/bin/env bash
# Set up and run idsvc on embedded defaults: SQLite in ./var, in-process caches, the default face
# pack, and a seeded demo site (its API keys are printed and saved to var/demo-keys.json).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$ROOT"
# The face pack is optional: without it the face endpoints answer 503 face_engine_unavailable and
# everything else (QR passes, the registry, the audit trail) works. So a failed install only warns.
if ! idsvc models install; then
  echo "warning: no face model pack (fetching it needs Node.js/npm): face endpoints will answer 503 face_engine_unavailable." >&2
  echo "         Serving anyway. To add faces later: install Node.js/npm, run '.venv/bin/idsvc models install'" >&2
  echo "         (or '.venv/bin/idsvc models install --from PACK.zip' from a copy), then restart." >&2
fi
exec idsvc serve --demo "$@"
