"""Journal throughput: how many events per second reach the disk durably (WAL, synchronous=FULL).

    .venv/bin/python bench/bridge_journal.py [--events 20000]

- one append per transaction (one fsync per event): what a naive journal does;
- the JournalWriter the bridge uses: concurrent producers (200, like 200 doors) await their entry's
  commit, and every entry waiting when the disk is free goes into one transaction (group commit);
- reading back and marking uploaded, in the uploader's batches of 200.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import bridge_common  # noqa: F401  (puts the repository on sys.path)

from door_firmware_bridge.journal import UPLOADED, Entry, Journal, JournalWriter
from door_firmware_bridge.model import new_id, utcnow

DATA = {"decision_id": "5f0c3e9b2a8d4c1e9f7a6b5c4d3e2f10", "source": "offline", "credential": "qr", "reasons": [], "versions": {"trust_list": 3, "status_list": 41}}


def entry() -> Entry:
    return Entry(new_id(), "access_granted", utcnow(), 12, None, DATA)


def single(journal: Journal, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        journal.append_many([entry()])
    return n / (time.perf_counter() - start)


async def grouped(journal: Journal, n: int, producers: int) -> tuple[float, float]:
    writer = JournalWriter(journal)
    task = asyncio.create_task(writer.run())
    waits: list[float] = []

    async def produce(count: int) -> None:
        for _ in range(count):
            start = time.perf_counter()
            await writer.write(entry())
            waits.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(produce(n // producers) for _ in range(producers)))
    rate = (n // producers * producers) / (time.perf_counter() - start)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    waits.sort()
    return rate, waits[int(len(waits) * 0.99)] * 1000


def drain(journal: Journal) -> float:
    start, count = time.perf_counter(), 0
    while batch := journal.pending(200):
        journal.mark([e.event_id for e in batch], UPLOADED)
        count += len(batch)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--producers", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "journal.db")
        print(f"one event per fsync                    {single(journal, 500):9.0f} events/s")
        rate, p99 = asyncio.run(grouped(journal, args.events, args.producers))
        print(f"group commit, {args.producers} producers           {rate:9.0f} events/s   p99 wait until durable {p99:.1f} ms")
        print(f"read + mark uploaded (batches of 200)  {drain(journal):9.0f} events/s")
        journal.close()


if __name__ == "__main__":
    main()
