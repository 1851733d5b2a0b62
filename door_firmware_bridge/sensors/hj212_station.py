"""A simulated HJ 212-2017 monitoring station (数采仪), written from the standard's text and kept
apart from the service's codec: its CRC follows Appendix A's steps bit by bit, its frames follow
section 6.3 and the examples of Appendix C (Table C.14, C.16 to C.18, C.50 for split messages).
"""

from __future__ import annotations

import asyncio
from datetime import datetime


def appendix_a_crc(data: bytes) -> int:
    """Appendix A, steps 1-10: register 0xFFFF; per byte, XOR it with the register's high byte
    (into the register), then 8 times: take the last bit, shift right, XOR 0xA001 if it was 1."""
    register = 0xFFFF
    for byte in data:
        register = (register >> 8) ^ byte
        for _ in range(8):
            last = register & 0x0001
            register >>= 1
            if last:
                register ^= 0xA001
    return register


def frame(segment: str, *, crc: int | None = None) -> bytes:
    """``##`` + 4-digit length + data segment + CRC (4 hex, high byte first) + CR LF (section 6.3.1)."""
    data = segment.encode("utf-8")
    value = appendix_a_crc(data) if crc is None else crc
    return b"##" + f"{len(data):04d}".encode() + data + f"{value:04X}".encode() + b"\r\n"


def qn(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M%S") + f"{at.microsecond // 1000:03d}"


class StationSim:
    """Sends data the way a 数采仪 does and reads the platform's answers."""

    def __init__(self, mn: str, password: str, host: str = "127.0.0.1", port: int = 2120, st: str = "22") -> None:
        self.mn, self.password, self.st = mn, password, st
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.answers: list[bytes] = []

    async def __aenter__(self) -> StationSim:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass

    def segment(self, cn: str, cp: str, *, at: datetime, flag: int = 5, pnum: int | None = None, pno: int | None = None, password: str | None = None) -> str:
        split = f"PNUM={pnum};PNO={pno};" if pnum is not None else ""
        return f"QN={qn(at)};ST={self.st};CN={cn};PW={self.password if password is None else password};MN={self.mn};Flag={flag};{split}CP=&&{cp}&&"

    async def send(self, raw: bytes, *, pieces: int = 1, answer: bool = True, timeout: float = 5.0) -> bytes | None:
        """Write a frame (in ``pieces`` writes, to test reassembly) and wait for one answer line."""
        assert self.writer is not None and self.reader is not None
        step = max(1, len(raw) // pieces)
        for start in range(0, len(raw), step):
            self.writer.write(raw[start : start + step])
            await self.writer.drain()
            if pieces > 1:
                await asyncio.sleep(0.02)
        if not answer:
            return None
        async with asyncio.timeout(timeout):
            line = await self.reader.readuntil(b"\r\n")
        self.answers.append(line)
        return line

    async def no_answer(self, within: float = 0.5) -> bool:
        assert self.reader is not None
        try:
            async with asyncio.timeout(within):
                line = await self.reader.readuntil(b"\r\n")
        except TimeoutError:
            return True
        self.answers.append(line)
        return False


def data_cp(data_time: datetime, values: dict[str, dict[str, object]]) -> str:
    """CP of a data upload: ``DataTime=...;a21026-Avg=0.5,a21026-Flag=N;...`` (Table C.16-C.18)."""
    items = [f"DataTime={data_time.strftime('%Y%m%d%H%M%S')}"]
    for code, fields in values.items():
        items.append(",".join(f"{code}-{suffix}={value}" for suffix, value in fields.items()))
    return ";".join(items)
