#!/usr/bin/env bash
# Set up and run idsvc on embedded defaults: SQLite in ./var, in-process caches, the default face
# pack, and a seeded demo site (its API keys are printed and saved to var/demo-keys.json).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$ROOT"
idsvc models install
exec idsvc serve --demo "$@"
