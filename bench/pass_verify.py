"""In-process pass verification per second, as a ratio to raw Ed25519 verifications in the same run.

    .venv/bin/python bench/pass_verify.py [--seconds 10]

"raw" = one Ed25519 verification of the very bytes a pass signs, with OpenSSL (cryptography) and with
libsodium (PyNaCl, which the pass path uses): the floor any COSE verifier pays. "pass" = ``PassVerifier.identify``: prefix, base45, zlib check, CBOR,
COSE_Sign1 via python-cwt, trust (kid lookup), claims, nbf/exp, status (revoked set), pass -> person:
everything the door decision needs before the grant check, with keys and statuses held in process,
each call verified in full ("first sight"); "repeat" is the same pass again, its verified bytes
remembered (what a door sees most of the day).
"decide" adds the registry grant check and the audit event (database work, SQLite file here), with
the event written in its own transaction ("inline") or journalled and batched (as the API does).
The candidates alternate in slices of 100 calls so they share the machine's state; the median slice
rate of each is printed, with the interquartile range.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idsvc.auth.principal import OPERATOR
from idsvc.config import Settings
from idsvc.context import AppContext
from idsvc.core.db import utcnow
from idsvc.db.migrate import upgrade
from idsvc.passes import codec, issuing, keys, qr
from idsvc.audit.decision_log import DecisionLog
from idsvc.passes.dynamic import Holder
from idsvc.passes.verify import PassVerifier
from tests.world import build_world


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second over about ``seconds``."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn()
        count += 200
    return count / elapsed


def interleaved_rates(candidates: dict[str, Callable[[], object]], seconds: float, calls: int = 100) -> dict[str, list[float]]:
    """Rates of short slices, alternating the candidates: load spikes on this shared machine hit all
    of them alike, and the median slice of each ignores the spikes."""
    slices: dict[str, list[float]] = {name: [] for name in candidates}
    stop = time.perf_counter() + seconds * len(candidates)
    while time.perf_counter() < stop:
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            slices[name].append(calls / (time.perf_counter() - start))
    return slices


def make_context(workdir: Path, database_url: str | None = None) -> AppContext:
    url = database_url or f"sqlite:///{workdir / 'bench.db'}"
    upgrade(url)
    return AppContext.from_settings(Settings(database_url=url, data_dir=workdir, master_key="", _env_file=None))  # type: ignore[call-arg]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per candidate, in alternating slices")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = make_context(Path(tmp))
        world = build_world(ctx)
        holder = Holder()
        with ctx.db.session() as s:
            static = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant1"]).text
            bound = issuing.issue(s, ctx.sealer, OPERATOR, world.ids["tenant2"], holder_public_key=holder.public_key).text
            raw_public = serialization.load_der_public_key(keys.active_issuer_key(s, ctx.sealer).public_der).public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        # The exact bytes the pass signature covers, for the raw baselines.
        message = codec.parse_sign1(codec.decode_text(static))
        signature = message.message.value[3]
        to_be_signed = cbor2.dumps(["Signature1", message.message.value[0], b"", message.payload])
        openssl_key = Ed25519PublicKey.from_public_bytes(raw_public)
        openssl_key.verify(signature, to_be_signed)
        crypto_sign_open(signature + to_be_signed, raw_public)

        # Steady state: keys and statuses in memory. "first sight" verifies every call in full; "repeat"
        # is the same pass shown again (its verified bytes remembered).
        first_sight = PassVerifier(ctx, refresh_seconds=3600, remember_tokens=False)
        verifier = PassVerifier(ctx, refresh_seconds=3600)
        door, at = world.ids["door1"], utcnow()
        assert first_sight.identify(static, door, at).reasons == [] == verifier.identify(static, door, at).reasons
        candidates: dict[str, Callable[[], object]] = {
            "raw_ed25519_openssl": lambda: openssl_key.verify(signature, to_be_signed),
            "raw_ed25519_libsodium": lambda: crypto_sign_open(signature + to_be_signed, raw_public),
            "pass_identify": lambda: first_sight.identify(static, door, at),
            "pass_identify_repeat": lambda: verifier.identify(static, door, at),
        }
        runs = interleaved_rates(candidates, args.seconds)
        med = {name: statistics.median(values) for name, values in runs.items()}
        quartiles = {name: statistics.quantiles(values, n=4) for name, values in runs.items()}

        # A phone presentation: two signature checks (pass + phone) and a replay marker per call.
        shown = holder.present(bound, at=at, door_id=world.ids["door2"])
        dynamic_rate = rate(lambda: first_sight.identify(shown, world.ids["door2"], at), args.seconds)
        decide_inline = rate(lambda: verifier.decide(door, static, actor="bench"), args.seconds)
        ctx.decision_log = DecisionLog(ctx.db, Path(tmp) / "journal")  # as a running app has it
        decide_batched = rate(lambda: verifier.decide(door, static, actor="bench"), args.seconds)
        ctx.decision_log.close()
        print(
            json.dumps(
                {
                    "pass_text_chars": len(static),
                    "qr_version_static": qr.symbol_version(static),
                    "dynamic_text_chars": len(shown),
                    "qr_version_dynamic": qr.symbol_version(shown),
                    **{f"{name}_per_s": round(value) for name, value in med.items()},
                    "ratio_pass_to_raw_openssl": round(med["pass_identify"] / med["raw_ed25519_openssl"], 3),
                    "ratio_pass_to_raw_libsodium": round(med["pass_identify"] / med["raw_ed25519_libsodium"], 3),
                    "ratio_repeat_to_raw_openssl": round(med["pass_identify_repeat"] / med["raw_ed25519_openssl"], 3),
                    "dynamic_identify_per_s": round(dynamic_rate),
                    "decide_audit_inline_per_s": round(decide_inline),
                    "decide_audit_batched_per_s": round(decide_batched),
                    "slices_per_candidate": len(runs["pass_identify"]),
                    "interquartile_per_s": {name: [round(q[0]), round(q[2])] for name, q in quartiles.items()},
                },
                indent=2,
            )
        )
        ctx.close()


if __name__ == "__main__":
    main()
