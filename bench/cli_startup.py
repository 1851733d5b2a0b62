"""How long `idsvc --help`, `idsvc --version` and `door-bridge --help` take, against a baseline commit
measured in the same run (the code of that commit, the same interpreter and packages).

    python bench/cli_startup.py                      # baseline: aaa9456 (before lazy command loading)
    python bench/cli_startup.py --baseline main --runs 30

Each command runs in a fresh process (what an operator waits for); the median of --runs is printed
with the ratio to the baseline. The editable install is bypassed so that each tree is the one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "idsvc --help": ("idsvc.cli", ["--help"]),
    "idsvc --version": ("idsvc.cli", ["--version"]),
    "door-bridge --help": ("door_firmware_bridge.cli", ["--help"]),
}
LAUNCH = (
    "import sys\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "module = __import__(sys.argv[2], fromlist=['app'])\n"
    "try:\n"
    "    module.app(sys.argv[3:])\n"
    "except SystemExit:\n"
    "    pass\n"
)


def tree_of(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", ref, "idsvc", "door_firmware_bridge"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def median_seconds(tree: Path, module: str, args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs + 2):  # two warm-up runs fill the OS file cache
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", LAUNCH, str(tree), module, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="aaa9456", help="git ref of the baseline (default: before lazy loading)")
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = tree_of(options.baseline, Path(tmp))
        print(f"median of {options.runs} fresh processes; baseline {options.baseline}, Python {sys.version.split()[0]}")
        print(f"{'command':22} {'baseline':>10} {'this tree':>10} {'ratio':>7}")
        for name, (module, args) in COMMANDS.items():
            before = median_seconds(baseline, module, args, options.runs)
            now = median_seconds(ROOT, module, args, options.runs)
            print(f"{name:22} {before * 1000:8.0f}ms {now * 1000:8.0f}ms {now / before:7.2f}")


if __name__ == "__main__":
    main()
