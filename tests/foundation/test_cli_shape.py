"""The shape of both CLIs: every command has a help line, one verb per action, `--version`, commands
loaded only when used, and every `idsvc ...` command the docs show exists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import typer
import typer.main
from typer import _click as click
from typer.testing import CliRunner

from door_firmware_bridge.cli import app as bridge_app
from idsvc import __version__
from idsvc.cli import COMMANDS, load_domain
from idsvc.cli import app as idsvc_app
from tests.conftest import REPO_ROOT
from tests.foundation.test_cli_inputs import leaf_commands

HEAVY = ("fastapi", "sqlalchemy", "numpy", "onnxruntime", "cv2", "pydantic_settings")


def _every_command(app: typer.Typer) -> list[tuple[list[str], object]]:
    """Groups and leaves alike."""
    root = typer.main.get_command(app)
    found = []

    def walk(group: object, path: list[str], ctx: object) -> None:
        for name in group.list_commands(ctx):  # type: ignore[attr-defined]
            command = group.get_command(ctx, name)  # type: ignore[attr-defined]
            found.append(([*path, name], command))
            if hasattr(command, "list_commands"):
                walk(command, [*path, name], click.Context(command, parent=ctx))  # type: ignore[arg-type]

    walk(root, [], click.Context(root))
    return found


def test_every_command_and_group_has_a_help_line() -> None:
    for app in (idsvc_app, bridge_app):
        missing = [" ".join(path) for path, command in _every_command(app) if not (command.get_short_help_str() or "").strip()]  # type: ignore[attr-defined]
        assert missing == []


def test_the_root_help_lines_are_the_domains_own() -> None:
    """`idsvc --help` shows help lines written in cli/__init__.py; they must say what the domain says."""
    for name, mounted in COMMANDS.items():
        command = load_domain(mounted.module).get_command(click.Context(typer.main.get_command(idsvc_app)), name)
        assert command is not None, f"{mounted.module} does not register {name!r}"
        assert (command.help or "").strip().splitlines()[0] == mounted.help, name


def test_every_registered_command_is_listed_at_the_root() -> None:
    ctx = click.Context(typer.main.get_command(idsvc_app))
    for module in {m.module for m in COMMANDS.values()}:
        registered = set(load_domain(module).list_commands(ctx))
        assert registered <= set(COMMANDS), f"{module} registers {registered - set(COMMANDS)} that `idsvc --help` does not list"


def test_one_verb_per_action() -> None:
    """No `pass revoke` beside `revoke pass`: a command path is never another's words reordered."""
    paths = [tuple(path) for path, _ in leaf_commands(idsvc_app)]
    words = {}
    for path in paths:
        key = tuple(sorted(w.removesuffix("s") for w in path))
        assert key not in words, f"`idsvc {' '.join(path)}` and `idsvc {' '.join(words[key])}` do the same"
        words[key] = path
    leaves = {p[-1] for p in paths}
    assert "withdraw-key" not in leaves  # issuer keys are withdrawn with `idsvc revoke issuer-key`


def test_version_on_both_clis() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["project"].get("version", __version__) == __version__
    assert CliRunner().invoke(idsvc_app, ["--version"]).stdout.strip() == f"idsvc {__version__}"
    assert CliRunner().invoke(bridge_app, ["--version"]).stdout.strip() == f"door-bridge {__version__}"


def test_help_and_version_import_no_heavy_module() -> None:
    """What makes `idsvc --help` fast (bench/cli_startup.py measures it): no domain is imported."""
    probe = (
        "import sys\n"
        "from idsvc.cli import app\n"
        "for args in (['--help'], ['--version'], []):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "Signed e-passes" in result.stdout  # the help was printed
    assert json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')) == []


def test_every_command_the_docs_show_exists() -> None:
    """`idsvc a b ...` in the code of README.md and docs/ (docker/ has tests/foundation/test_deploy_files.py)."""
    root = typer.main.get_command(idsvc_app)
    sources = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    unknown = []
    for source in sources:
        text = source.read_text()
        code = "\n".join(re.findall(r"```.*?```|`[^`\n]+`", text, re.DOTALL))
        for match in re.finditer(r"(?:^|[`\s(/])idsvc((?: [a-z][a-z0-9-]*)+)", code, re.MULTILINE):
            words = match.group(1).split()
            group, ctx = root, click.Context(root)
            for word in words:
                command = group.get_command(ctx, word) if hasattr(group, "get_command") else None
                if command is None:
                    if hasattr(group, "list_commands"):  # a group's next word must be one of its commands
                        unknown.append(f"{source.name}: idsvc {' '.join(words)}")
                    break
                group, ctx = command, click.Context(command, parent=ctx)
    assert unknown == []
