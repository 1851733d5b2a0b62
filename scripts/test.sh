#!/usr/bin/env bash
# Set up and run the whole test suite. By default on embedded defaults (SQLite, in-process store);
# set IDSVC_TEST_DATABASE_URL=postgresql+psycopg://... and IDSVC_TEST_REDIS_URL=redis://... to run
# the same tests against real servers. Extra arguments go to pytest.
set -euo pipefail
IDSVC_EXTRAS=test source "$(dirname "$0")/setup.sh"
cd "$ROOT"
idsvc models install
exec python -m pytest "$@"
