"""Every command of both CLIs (`idsvc`, `door-bridge`), enumerated from the Typer apps so that a new
command is covered without editing this file, is run with bad and odd input: missing, unreadable
and unopenable files, directories, 500-character, unicode, empty and binary-ish arguments, ids
out of range and numbers that are not finite. Each run must end in a clean answer or an error
message that says what to fix: never a traceback (an exception escaping the command)."""

from __future__ import annotations

import enum
import itertools
import os
import pathlib
import re
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer import _click as click
from typer.testing import CliRunner

from door_firmware_bridge.cli import app as bridge_app
from idsvc.cli import app as idsvc_app
from idsvc.context import AppContext
from tests.world import World

PASS_LIKE = ("NH1:" + "6BFOXN%TS3DH0YOJ58S S-W5HDC *M0II5XHC9B5G2+$N IOP-IA%NFQGRJPC" * 10)[:500]  # base45, no "/"

assert len(PASS_LIKE) == 500  # as a file name: one path component over the 255-byte limit


@dataclass(frozen=True)
class Variant:
    """One kind of bad input, given to every text and path parameter of a command at once."""

    label: str
    text: str
    integer: str
    number: str
    flags: bool


def _unreadable(tmp: Path) -> Path:
    if os.geteuid() != 0:
        path = tmp / "unreadable.jpg"
        path.write_bytes(b"\xff\xd8\xff")
        path.chmod(0)
        return path
    return Path("/proc/self/mem")  # root reads any mode-0 file; this one fails to read (EIO)


def variants(tmp: Path) -> list[Variant]:
    (tmp / "folder").mkdir()
    (tmp / "file.txt").write_text("a file, not a folder")
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "junk.png").write_bytes(bytes(range(1, 256)) * 8)
    (tmp / "loop").symlink_to(tmp / "loop")
    paths = {
        "missing file": str(tmp / "does-not-exist.jpg"),
        "directory": str(tmp / "folder"),
        "unreadable file": str(_unreadable(tmp)),
        "path through a file": str(tmp / "file.txt" / "x.jpg"),
        "symlink loop": str(tmp / "loop"),
        "empty file": str(tmp / "empty.jpg"),
        "binary file": str(tmp / "junk.png"),
    }
    texts = {
        "500 characters": PASS_LIKE,
        "unicode": "粤B·12345 ☃ 住户",
        "empty": "",
        "binary-ish": "\x01\x1b[31m\x7f\u200b\ufffd\udcff",
        "dash": "-",
    }
    integers = itertools.cycle(["1", "0", "-1", "2147483648", "99999999999999999999"])
    numbers = itertools.cycle(["nan", "inf", "-1", "1e400", "0"])
    flags = itertools.cycle([False, True])
    return [Variant(label, text, next(integers), next(numbers), next(flags)) for label, text in {**paths, **texts}.items()]


def leaf_commands(app: typer.Typer) -> Iterator[tuple[list[str], Any]]:
    """(path, click command) of every runnable command, however deeply it is nested."""
    root = typer.main.get_command(app)

    def walk(group: Any, path: list[str], ctx: Any) -> Iterator[tuple[list[str], Any]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if hasattr(command, "list_commands"):
                yield from walk(command, [*path, name], click.Context(command, parent=ctx))
            else:
                yield [*path, name], command

    yield from walk(root, [], click.Context(root))


def _value(annotation: Any, variant: Variant) -> str | None:
    inner = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else annotation
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        # A wrong choice is refused by the parser itself; odd text only for the unicode variant.
        return variant.text if variant.label == "unicode" else next(iter(inner)).value
    if inner is bool:
        return None
    if inner is int:
        return variant.integer
    if inner is float:
        return variant.number
    if inner in (str, Path, pathlib.PosixPath):
        return variant.text
    raise AssertionError(f"no odd value for parameter type {inner!r}: extend this test")


def arguments(command: Any, variant: Variant) -> list[str]:
    args: list[str] = []
    for param in command.params:
        annotation = param.type_descriptor.annotation
        if isinstance(param, typer.core.TyperArgument):
            value = _value(annotation, variant)
            assert value is not None
            args.append(value)
        elif annotation is bool:
            if variant.flags and param.name not in ("help", "version"):
                args.append(param.opts[0])
        else:
            value = _value(annotation, variant)
            if value is not None:
                args += [param.opts[0], value]
    return args


def _names(command: Any) -> set[str]:
    names = set()
    for param in command.params:
        names.update(param.opts)
        names.update(o.lstrip("-") for o in param.opts)
        names.add(param.name)
        names.add(param.name.upper())
        names.add(param.name.replace("_", " "))
        names.add(param.name.removesuffix("_id"))
        names.add(param.name.removesuffix("s"))
    return {n.lower() for n in names if n}


def check(app: typer.Typer, path: list[str], command: Any, variant: Variant) -> str | None:
    """None if the command answered cleanly; else what went wrong."""
    args = arguments(command, variant)
    result = CliRunner().invoke(app, [*path, *args])
    shown = f"`{' '.join(path)}` with {variant.label} input {args!r}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"{shown}: {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in result.output:
        return f"{shown}: printed a traceback"
    if result.exit_code != 0:
        message = result.stderr.strip()
        if not message:
            return f"{shown}: exit {result.exit_code} without a message"
        lowered = message.lower()
        values = [re.sub(r"\x1b\[[0-9;]*m", "", v) for v in (variant.text[:60], variant.integer, variant.number) if v]
        if not variant.text:
            values.append(".")  # an empty path is the working directory
        named = any(name in lowered for name in _names(command)) or any(v.lower() in lowered for v in values)
        refused_by_a_rule = re.search(r"\[[a-z_]+\]$", message) is not None  # the service's own error, with its code
        if not (named or refused_by_a_rule):
            return f"{shown}: the message names no parameter or value to fix: {message!r}"
    return None


@pytest.fixture
def cli_env(ctx: AppContext, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLIs on this run's database, in an empty working directory (some commands write files)."""
    monkeypatch.setenv("IDSVC_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("IDSVC_DATA_DIR", str(ctx.settings.data_dir))
    # Without Redis: input handling does not depend on it, and closing a Redis notice listener costs
    # each of the ~700 runs half a second (core/bus.py polls its channel every 0.5 s).
    monkeypatch.setenv("IDSVC_REDIS_URL", "")
    monkeypatch.setenv("IDSVC_MASTER_KEY", "")
    monkeypatch.delenv("DOOR_BRIDGE_CONFIG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.mark.parametrize("app", [idsvc_app, bridge_app], ids=["idsvc", "door-bridge"])
def test_every_command_answers_bad_input_without_a_traceback(app: typer.Typer, cli_env: Path) -> None:
    problems = []
    commands = list(leaf_commands(app))
    assert len(commands) >= (40 if app is idsvc_app else 5)
    for variant in variants(cli_env):
        for path, command in commands:
            problem = check(app, path, command, variant)
            if problem:
                problems.append(problem)
    assert problems == [], "\n".join(problems)


def test_inspect_takes_a_long_qr_text_that_no_file_system_would_take_as_a_name() -> None:
    """The instance that made CI flaky: a QR text is not a file name, even when it looks like one."""
    result = CliRunner().invoke(idsvc_app, ["pass", "inspect", PASS_LIKE])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1 and '"layer": "base45"' in result.stdout


def test_faces_compare_names_the_missing_photo(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.jpg"
    result = CliRunner().invoke(idsvc_app, ["faces", "compare", str(missing), str(missing)])
    assert result.exit_code != 0 and result.exception is None or isinstance(result.exception, SystemExit)
    assert str(missing) in result.stderr and "Traceback" not in result.output


if sys.platform != "linux":  # /proc/self/mem stands in for an unreadable file as root
    pytestmark = pytest.mark.skip(reason="needs Linux")
