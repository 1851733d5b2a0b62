"""Mutation testing of the safety checks: break one line, run the tests that guard it, expect a failure.

    python bench/mutants.py --short            # CI: the fixed list of critical one-line breaks (SHORT)
    python bench/mutants.py                    # long form: every generated mutant of every target
    python bench/mutants.py --only offline.py  # long form for targets whose file or function matches
    python bench/mutants.py --list             # print the long form's mutants without running them

Long form: for each function in TARGETS, mutants are generated from its AST (negate a comparison,
swap and/or, drop a ``not``, flip ``return True/False``, remove a call statement or an augmented
assignment, change an int constant by +-1, delete an ``if ...: return/raise``). Each is written into
the source file, the target's test files run with ``pytest -x -q``, and the file is restored (in
``finally``, also on Ctrl-C or SIGTERM). A mutant is *killed* when the tests fail (or time out),
*survived* when they pass. Some survivors are equivalent mutants (``x >= 0`` vs ``x > 0`` where 0
never occurs): judge each before writing a test for it.

Short form: each entry of SHORT is an exact source snippet and its one-line break (the issue's seven
and the bridge's default-deny reasons) with the tests that must catch it; a snippet that is no
longer in the file is an error, so the list moves with the code. Exit 1 on any survivor.

Why not mutmut or cosmic-ray: both mutate whole modules (hundreds of mutants in verify.py alone) and
mutmut needs a stats run of the whole suite to map tests; neither takes a per-function target and
test list, which is what keeps this under a few minutes in CI. Dependencies: the standard library.
"""

from __future__ import annotations

import argparse
import ast
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PASS_TESTS = ["tests/passes/test_verify.py", "tests/passes/test_dynamic.py", "tests/passes/test_api.py"]
DENY_TESTS = "tests/bridge/test_default_deny.py"


@dataclass(frozen=True)
class Target:
    path: str
    functions: tuple[str, ...]  # qualified names: "check", "PassVerifier.identify"
    tests: tuple[str, ...]  # fastest and most specific first: -x stops at the first failure


TARGETS = [
    Target("idsvc/passes/codec.py", ("sign1_from", "verify_signature", "decode_text", "strip_prefix", "inflate"),
           ("tests/passes/test_codec.py", "tests/passes/test_verify.py", "tests/passes/test_api.py", "tests/passes/test_dcc_vectors.py")),
    Target("idsvc/passes/verify.py", ("PassVerifier._verified", "PassVerifier._standing", "PassVerifier.identify", "PassVerifier.decide"),
           tuple(PASS_TESTS)),
    Target("idsvc/passes/dynamic.py", ("parse", "check", "replay_ttl"), ("tests/passes/test_dynamic.py",)),
    Target("idsvc/revocation/denyset.py", ("DenySet.reasons", "DenySet._apply"),
           ("tests/passes/test_verify.py", "tests/revocation/test_revocation.py")),
    Target("idsvc/registry/access.py", ("grant_problems", "status_reasons", "evaluate", "check_access"),
           ("tests/foundation/test_access.py", "tests/foundation/test_access_index.py")),
    Target("idsvc/registry/index.py", ("AccessIndex.check", "AccessIndex.authorise"),
           ("tests/foundation/test_access_index.py", "tests/foundation/test_access.py")),
    Target("idsvc/registry/scope.py", ("can_see_person", "can_manage_unit", "can_see_unit", "listed_site", "admin_listing", "member_of_site"),
           ("tests/foundation/test_list_scope.py", "tests/foundation/test_role_matrix.py", "tests/privacy/test_erasure.py")),
    Target("idsvc/audit/service.py", ("verify",), ("tests/foundation/test_audit.py", "tests/privacy/test_audit_pseudonymise.py")),
    Target("door_firmware_bridge/decisions.py", ("OnlineDecider._post", "Decider._qr", "Decider._plate", "Decider.decide", "_usable_plate"),
           (DENY_TESTS, "tests/bridge/test_gate_isapi.py", "tests/bridge/test_hikvision.py")),
    Target("door_firmware_bridge/offline.py", ("OfflineCache._usable", "OfflineCache.decide_qr", "OfflineCache.decide_plate", "OfflineCache.decide_subject"),
           (DENY_TESTS, "tests/bridge/test_offline.py")),
    Target("door_firmware_bridge/supervisor.py", ("Supervisor.pulse", "Supervisor._run", "Supervisor._finish"),
           ("tests/bridge/test_supervisor.py", "tests/bridge/test_lock_mqtt.py", "tests/bridge/test_restarts.py")),
    Target("door_firmware_bridge/clock.py", ("skew_reason",), (DENY_TESTS, "tests/bridge/test_hikvision.py")),
    Target("door_firmware_bridge/temperature.py", ("ReadingLedger.claim", "check"), (DENY_TESTS, "tests/bridge/test_hikvision.py")),
    Target("door_firmware_bridge/recovery.py", ("settle",), ("tests/bridge/test_restarts.py",)),
    Target("idsvc/sync/verify.py", ("_authorise", "_grant_problems"), ("tests/sync/test_feed.py", "tests/bridge/test_offline.py")),
    Target("idsvc/faces/service.py", ("verify_at_door", "_identify"), ("tests/faces/test_face_policy.py", "tests/faces/test_faces_api.py")),
]


@dataclass(frozen=True)
class Short:
    path: str
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # test ids that must fail


_DENY = f"{DENY_TESTS}::"
SHORT = [
    # The seven surviving mutants.
    Short("door_firmware_bridge/offline.py", "            codec.verify_signature(message, issuer.key)\n", "            pass\n",
          (_DENY + "test_offline_refuses_a_tampered_signature_with_a_trusted_kid",)),
    Short("door_firmware_bridge/bridge.py", '            decision = decision.with_reasons("decision_late")\n', "            pass\n",
          (_DENY + "test_an_allow_that_arrives_after_the_deadline_opens_nothing",)),
    Short("door_firmware_bridge/decisions.py", 'return Decision.deny("offline", "qr", "service_unreachable", "offline_disabled")',
          'return Decision(True, (), "offline", "qr")', (_DENY + "test_a_slow_service_without_an_offline_cache_is_a_deny",)),
    Short("door_firmware_bridge/decisions.py", 'allow = body.get("allow") is True and not reasons', "allow = not reasons",
          (_DENY + "test_an_unclear_service_answer_is_a_deny",)),
    Short("idsvc/passes/verify.py", "            reasons.append(_STATUS_REASON[non_valid])\n", "            pass\n",
          ("tests/passes/test_verify.py::test_revocation_reaches_other_nodes_by_polling",)),
    Short("idsvc/passes/verify.py", "        reasons += [r for r in self.ctx.deny.reasons(pass_id=claims.pass_id, sub=claims.sub, kid=trusted.kid) if r not in reasons]\n",
          "        pass\n", ("tests/passes/test_verify.py::test_deny_set_alone_refuses_a_revoked_pass",)),
    Short("idsvc/passes/dynamic.py", "ACCEPTED_SKEW_STEPS = 1\n", "ACCEPTED_SKEW_STEPS = 2\n",
          ("tests/passes/test_dynamic.py::test_steps_either_side_are_accepted_and_older_ones_are_stale",)),
    # A trusted kid and alg with a bad signature, service side.
    Short("idsvc/passes/verify.py", "        codec.verify_signature(message, trusted.key)\n", "        pass\n",
          ("tests/passes/test_verify.py::test_tampered_signature_with_a_trusted_kid_and_alg_is_refused",
           "tests/passes/test_api.py::test_device_verify_refuses_a_tampered_signature_with_a_trusted_kid")),
    # The bridge's other default-deny reasons (docs/bridge.md, Decisions).
    Short("door_firmware_bridge/decisions.py", 'return Decision.deny("offline", "plate", "service_unreachable", "offline_disabled")',
          'return Decision(True, (), "offline", "plate")', (_DENY + "test_a_slow_plate_lookup_without_an_offline_cache_is_a_deny",)),
    Short("door_firmware_bridge/decisions.py", 'return Decision.deny("offline", "face", "service_unreachable", "offline_disabled")',
          'return Decision(True, (), "offline", "face")', (_DENY + "test_a_slow_service_without_an_offline_cache_is_a_deny",)),
    Short("door_firmware_bridge/decisions.py", 'return Decision.deny("online", credential, "service_answer_unclear")',
          'return Decision(True, (), "online", credential)', (_DENY + "test_an_unclear_service_answer_is_a_deny",)),
    Short("door_firmware_bridge/decisions.py", 'return Decision.deny("online", credential, f"service_refused:{code}")',
          'return Decision(True, (), "online", credential)', (_DENY + "test_a_refusal_by_the_service_is_final_not_an_offline_allow",)),
    Short("door_firmware_bridge/clock.py", '        return "presentation_late"\n', "        return None\n",
          (_DENY + "test_a_late_or_early_terminal_clock_is_refused_without_asking",)),
    Short("door_firmware_bridge/clock.py", '        return "presentation_from_future"\n', "        return None\n",
          (_DENY + "test_a_late_or_early_terminal_clock_is_refused_without_asking",)),
    Short("door_firmware_bridge/offline.py", '        if credential == "qr" and not door.offline_qr:\n', "        if False:\n",
          (_DENY + "test_offline_refusals_before_any_credential_is_read",)),
    Short("door_firmware_bridge/offline.py", "        if age < -CLOCK_SKEW_S:\n", "        if False:\n",
          (_DENY + "test_offline_refusals_before_any_credential_is_read",)),
    Short("door_firmware_bridge/offline.py", "        if age > self.max_staleness_s:\n", "        if False:\n",
          ("tests/bridge/test_offline.py::test_stale_feed_refuses_offline_qr_with_reason",)),
    Short("door_firmware_bridge/offline.py", '            reasons.append("issuer_unknown")\n', "            pass\n",
          (_DENY + "test_offline_refuses_a_tampered_signature_with_a_trusted_kid",)),
    Short("door_firmware_bridge/offline.py", '            reasons.append("pass_expired")\n', "            pass\n",
          (_DENY + "test_offline_checks_every_pass_property_the_service_checks",)),
    Short("door_firmware_bridge/offline.py", "            reasons += dynamic.check(presentation, claims.holder_key, claims.pass_id, door.door_id, at, self._replay)\n",
          "            pass\n", (_DENY + "test_offline_checks_every_pass_property_the_service_checks",)),
    Short("door_firmware_bridge/offline_faces.py", "        if threshold is None:\n", "        if False:\n",
          (_DENY + "test_offline_faces_refuse_when_the_feed_names_another_pack",)),
    Short("door_firmware_bridge/decisions.py", '                return Decision.deny("bridge", presented_kind(presented), "lane_needs_plate")\n',
          "                return None\n", (_DENY + "test_lane_and_plate_refusals",)),
    Short("door_firmware_bridge/decisions.py", '        return Decision.deny("bridge", presented_kind(presented), "no_credential")\n',
          '        return Decision(True, (), "bridge", "none")\n', (_DENY + "test_lane_and_plate_refusals",)),
]


# --- generating mutants -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    start: int  # byte offsets into the file
    end: int
    replacement: str
    change: str


_NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}


def _offsets(source: bytes) -> list[int]:
    starts, at = [], 0
    for line in source.splitlines(keepends=True):
        starts.append(at)
        at += len(line)
    return starts


def _functions(tree: ast.Module, wanted: tuple[str, ...]) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    def visit(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + node.name, node
            elif isinstance(node, ast.ClassDef):
                yield from visit(node.body, f"{prefix}{node.name}.")

    found = {name: node for name, node in visit(tree.body, "") if name in wanted}
    if missing := set(wanted) - set(found):
        raise SystemExit(f"mutants: {sorted(missing)} not found; update TARGETS in bench/mutants.py")
    return list(found.values())


def _changes(node: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node to replace, replacement text, what changed) for one AST node."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _NEGATED:
        flipped = ast.Compare(node.left, [_NEGATED[type(node.ops[0])]()], node.comparators)
        yield node, ast.unparse(flipped), f"`{ast.unparse(node)}` -> `{ast.unparse(flipped)}`"
    elif isinstance(node, ast.BoolOp):
        swapped = ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
        yield node, ast.unparse(swapped), f"`{ast.unparse(node)}` -> `{ast.unparse(swapped)}`"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node, f"({ast.unparse(node.operand)})", f"dropped `not` in `{ast.unparse(node)}`"
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool):
        yield node, f"return {not node.value.value}", f"`return {node.value.value}` -> `return {not node.value.value}`"
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
        yield node, "pass", f"removed call `{_short(node)}`"
    elif isinstance(node, ast.AugAssign):
        yield node, "pass", f"removed `{_short(node)}`"
    elif isinstance(node, ast.If) and not node.orelse and isinstance(node.body[-1], ast.Return | ast.Raise):
        yield node, "pass", f"deleted `if {_short(node.test)}: {type(node.body[-1]).__name__.lower()} ...`"
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        for delta in (1, -1):
            yield node, str(node.value + delta), f"`{node.value}` -> `{node.value + delta}`"


def _short(node: ast.AST, width: int = 70) -> str:
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= width else text[: width - 3] + "..."


def generate(target: Target) -> list[Mutant]:
    source = (ROOT / target.path).read_bytes()
    starts = _offsets(source)
    mutants: dict[tuple[int, int, str], Mutant] = {}
    for function in _functions(ast.parse(source), target.functions):
        docstring = ast.get_docstring(function) is not None and function.body[0]
        for node in ast.walk(function):
            if node is docstring or node is function:
                continue
            for replaced, text, change in _changes(node):
                start = starts[replaced.lineno - 1] + replaced.col_offset  # type: ignore[attr-defined]
                end = starts[replaced.end_lineno - 1] + replaced.end_col_offset  # type: ignore[attr-defined]
                mutants.setdefault((start, end, text), Mutant(target.path, replaced.lineno, start, end, text, change))  # type: ignore[attr-defined]
    return sorted(mutants.values(), key=lambda m: (m.start, m.end))


# --- running ------------------------------------------------------------------------------------


class _Restore(Exception):
    pass


def _on_term(signum: int, frame: object) -> None:
    raise _Restore(f"signal {signum}")


def _pytest(tests: tuple[str, ...], timeout_s: float) -> tuple[bool, float]:
    """(tests passed, seconds)."""
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s, check=False)
        passed = done.returncode == 0
    except subprocess.TimeoutExpired:
        passed = False  # a hang under a mutant is a caught mutant
    return passed, time.monotonic() - started


def run_with(path: str, mutated: bytes, tests: tuple[str, ...], timeout_s: float) -> tuple[bool, float]:
    """Write ``mutated`` into ``path``, run ``tests``, restore the file (bytes and times) whatever happens."""
    file = ROOT / path
    original, stat = file.read_bytes(), file.stat()
    try:
        file.write_bytes(mutated)
        return _pytest(tests, timeout_s)
    finally:
        file.write_bytes(original)
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the cached bytecode of the original is valid again


def short_form() -> int:
    started = time.monotonic()
    guards = tuple(dict.fromkeys(t for entry in SHORT for t in entry.tests))
    passed, seconds = _pytest(guards, 600)
    if not passed:  # a failing (or skipped-into-error) guard would make every mutant look killed
        print(f"ERROR    the guarding tests fail unmutated: python -m pytest {' '.join(guards)}")
        return 1
    print(f"guards pass unmutated ({len(guards)} tests, {seconds:.1f} s)", flush=True)
    survivors = 0
    for entry in SHORT:
        source = (ROOT / entry.path).read_text(encoding="utf-8")
        if source.count(entry.old) != 1:
            print(f"ERROR    {entry.path}: {entry.old.strip()!r} occurs {source.count(entry.old)} times; update SHORT in bench/mutants.py")
            survivors += 1
            continue
        line = source[: source.index(entry.old)].count("\n") + 1
        passed, seconds = run_with(entry.path, source.replace(entry.old, entry.new).encode(), entry.tests, 180)
        survivors += passed
        print(f"{'SURVIVED' if passed else 'killed  '} {entry.path}:{line}  `{entry.old.strip()}` -> `{entry.new.strip()}`  ({seconds:.1f} s)", flush=True)
    print(f"short form: {len(SHORT)} mutants, {len(SHORT) - survivors} killed, {survivors} survived or stale, {time.monotonic() - started:.0f} s")
    return 1 if survivors else 0


def long_form(only: str | None, listing: bool) -> int:
    targets = [t for t in TARGETS if only is None or only in t.path or any(only in f for f in t.functions)]
    table = []
    for target in targets:
        mutants = generate(target)
        if listing:
            for m in mutants:
                print(f"{m.path}:{m.line}  {m.change}")
            continue
        baseline_ok, baseline_s = _pytest(target.tests, 900)
        if not baseline_ok:
            print(f"BASELINE FAILED {target.path}: {' '.join(target.tests)} fail unmutated; skipped")
            table.append((target, len(mutants), None, None))
            continue
        timeout_s = 3 * baseline_s + 30
        source = (ROOT / target.path).read_bytes()
        killed = 0
        for m in mutants:
            mutated = source[: m.start] + m.replacement.encode() + source[m.end :]
            passed, seconds = run_with(target.path, mutated, target.tests, timeout_s)
            killed += not passed
            print(f"{'SURVIVED' if passed else 'killed  '} {m.path}:{m.line}  {m.change}  ({seconds:.1f} s)", flush=True)
        table.append((target, len(mutants), killed, baseline_s))
        print(f"-- {target.path}: {len(mutants)} mutants, {killed} killed, {len(mutants) - killed} survived", flush=True)  # a partial run still counts
    if not listing:
        print("\n| file | functions | mutants | killed | survived | score | tests (s, unmutated) |\n|---|---|---:|---:|---:|---:|---:|")
        for target, count, killed, baseline_s in table:
            functions = ", ".join(target.functions)
            if killed is None:
                print(f"| {target.path} | {functions} | {count} | - | - | baseline failed | - |")
            else:
                print(f"| {target.path} | {functions} | {count} | {killed} | {count - killed} | {killed / max(count, 1):.0%} | {baseline_s:.0f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI list of critical one-line breaks; exit 1 on a survivor")
    parser.add_argument("--only", help="long form: targets whose file or function name contains this")
    parser.add_argument("--list", action="store_true", help="long form: print the mutants, run nothing")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_term)
    try:
        return short_form() if args.short else long_form(args.only, args.list)
    except _Restore as stop:  # the finally blocks have restored the file under test
        print(f"stopped by {stop}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
