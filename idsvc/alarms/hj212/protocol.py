"""HJ 212-2017 frames, written from the standard's text (section 6.3, Appendix A).

A frame is ``##`` + 4 decimal digits (length of the data segment in bytes) + data segment + 4 hex
digits CRC + CR LF. The data segment is ``QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;]
CP=&&...&&``. Inside CP, items are separated by ``;`` and a pollutant's values by ``,``
(``a21026-Rtd=1.2,a21026-Flag=N;a21002-Rtd=...``).

The CRC (Appendix A) is not CRC-16/MODBUS: each byte is XORed into the register *shifted right by
8* (``crc = (crc >> 8) ^ b``) before the 8 shift/XOR-0xA001 steps, so only the register's high byte
carries from one byte to the next. The standard's worked example prints 1C08 in its text for a
frame whose correct CRC (and the one in the frame itself) is 1C80.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

FLAG_ANSWER = 0x01  # bit A: the sender wants an answer
FLAG_SPLIT = 0x02  # bit D: PNUM/PNO present (one part of a split message)
FLAG_VERSION_SHIFT = 2  # V5..V0: 0 = HJ/T 212-2005, 1 = HJ 212-2017
STANDARD_MAX_DATA = 1024  # section 6.3.1; real stations send longer: accepted, counted
MAX_DATA = 9999  # what four decimal digits can say


class FrameError(ValueError):
    """A frame that cannot be used; ``code`` says why (logged; never an answer: the standard drops them)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _step(register: int) -> int:
    for _ in range(8):
        register = (register >> 1) ^ 0xA001 if register & 1 else register >> 1
    return register


# The register after a byte depends only on (high byte of the register) XOR (the byte): a 256-entry
# table for the last byte, and a 65,536-entry table that takes two bytes per step (one lookup, one
# XOR per two bytes: the parse benchmark's hot loop).
_T1 = [_step(v) for v in range(256)]
_HIGH = [t >> 8 for t in _T1]
_T2 = [_HIGH[_HIGH[w & 0xFF] ^ (w >> 8)] for w in range(65536)]  # a list: indexing it is twice as fast as an array's
_LITTLE_ENDIAN = sys.byteorder == "little"


def crc16(data: bytes) -> int:
    """The CRC of Appendix A over ``data`` (the data segment)."""
    if not data:
        return 0xFFFF
    high = 0xFF  # high byte of the initial register 0xFFFF
    body = memoryview(data)[:-1]
    if len(body) % 2:
        high = _HIGH[high ^ body[0]]
        body = body[1:]
    t2 = _T2
    for word in body.cast("H") if _LITTLE_ENDIAN else _words(body):
        high = t2[word ^ high]
    return _T1[high ^ data[-1]]


def _words(body: memoryview) -> list[int]:  # big-endian hosts: build little-endian words by hand
    return [body[i] | (body[i + 1] << 8) for i in range(0, len(body), 2)]


def modbus_crc16(data: bytes) -> int:
    """CRC-16/MODBUS, which some old stations send instead (accepted only where a station allows it)."""
    register = 0xFFFF
    for byte in data:
        register = _step_modbus(register ^ byte)
    return register


def _step_modbus(register: int) -> int:
    return (register >> 8) ^ _T1[register & 0xFF]


@dataclass(slots=True)
class Frame:
    qn: str
    st: str
    cn: str
    pw: str
    mn: str
    flag: int
    cp: str
    pnum: int | None = None
    pno: int | None = None
    crc_sent: int = 0
    crc_ok: bool = True  # the Appendix A CRC matched
    data_segment: bytes = b""
    extra: dict[str, str] = field(default_factory=dict)  # unknown header fields, kept for the log

    @property
    def wants_answer(self) -> bool:
        return bool(self.flag & FLAG_ANSWER)

    @property
    def split(self) -> bool:
        return bool(self.flag & FLAG_SPLIT)

    @property
    def version(self) -> int:
        return self.flag >> FLAG_VERSION_SHIFT


_HEADER_KEYS = {"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"}


def parse_data_segment(segment: str) -> dict[str, str]:
    """The header fields and the raw CP content of a data segment."""
    at = segment.find("CP=&&")
    if at < 0 or not segment.endswith("&&") or len(segment) < at + 7:
        raise FrameError("bad_cp", "the data segment has no CP=&&...&&")
    fields = {"CP": segment[at + 5 : -2]}
    for item in segment[:at].split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise FrameError("bad_field", f"header item {item[:40]!r} is not name=value")
        fields[key] = value
    return fields


def parse(raw: bytes) -> Frame:
    """One complete frame (``##`` ... CR LF) into a :class:`Frame`; raises :class:`FrameError`.

    A CRC mismatch is not raised here but recorded (``crc_ok``): whether it is fatal is the
    station's setting, and the station is named inside the frame.
    """
    if raw[:2] != b"##":
        raise FrameError("bad_header", "a frame starts with ##")
    if raw[-2:] != b"\r\n":
        raise FrameError("bad_trailer", "a frame ends with CR LF")
    digits = raw[2:6]
    if len(digits) != 4 or not digits.isdigit():
        raise FrameError("bad_length", "the data segment length is not 4 decimal digits")
    length = int(digits)
    if len(raw) != length + 12:
        raise FrameError("bad_length", f"the length field says {length} bytes, the frame holds {len(raw) - 12}")
    segment = raw[6 : 6 + length]
    crc_text = raw[6 + length : 10 + length]
    try:
        crc_sent = int(crc_text, 16)
    except ValueError:
        raise FrameError("bad_crc_field", "the CRC is not 4 hex digits") from None
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("bad_encoding", "the data segment is not UTF-8") from None
    fields = parse_data_segment(text)
    try:
        frame = Frame(
            qn=fields.get("QN", ""), st=fields["ST"], cn=fields["CN"], pw=fields.get("PW", ""), mn=fields["MN"],
            flag=int(fields.get("Flag", "0")), cp=fields["CP"], crc_sent=crc_sent, data_segment=segment,
        )
    except KeyError as exc:
        raise FrameError("missing_field", f"the data segment has no {exc.args[0]}") from None
    except ValueError:
        raise FrameError("bad_flag", "Flag is not a number") from None
    if not 0 <= frame.flag <= 255:
        raise FrameError("bad_flag", "Flag is out of 0..255")
    if frame.split:
        try:
            frame.pnum, frame.pno = int(fields["PNUM"]), int(fields["PNO"])
        except (KeyError, ValueError):
            raise FrameError("bad_split", "Flag says split but PNUM/PNO are missing or not numbers") from None
        if not 1 <= frame.pno <= frame.pnum:
            raise FrameError("bad_split", f"PNO {frame.pno} is not within 1..PNUM {frame.pnum}")
    extra = fields.keys() - _HEADER_KEYS - {"CP"}
    if extra:
        frame.extra = {k: fields[k] for k in extra}
    frame.crc_ok = crc16(segment) == crc_sent
    return frame


@dataclass(slots=True)
class DataArea:
    """CP's content: plain fields (DataTime, ...) and per-pollutant values (``{"a21026": {"Rtd": "1.2", "Flag": "N"}}``)."""

    fields: dict[str, str]
    pollutants: dict[str, dict[str, str]]


def parse_cp(cp: str) -> DataArea:
    fields: dict[str, str] = {}
    pollutants: dict[str, dict[str, str]] = {}
    for item in cp.split(";"):
        for pair in item.split(","):
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                if pair.strip():
                    raise FrameError("bad_cp", f"CP item {pair[:40]!r} is not name=value")
                continue
            code, dash, suffix = key.partition("-")
            if dash and suffix:
                pollutants.setdefault(code, {})[suffix] = value
            else:
                fields[key] = value
    return DataArea(fields, pollutants)


def encode(segment: str) -> bytes:
    """A complete frame around a data segment (length, Appendix A CRC in upper-case hex, CR LF)."""
    data = segment.encode("utf-8")
    if len(data) > MAX_DATA:
        raise FrameError("too_long", "a data segment longer than 9999 bytes cannot be framed")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def _answer(frame: Frame, cn: str, cp: str) -> bytes:
    # ST=91 is "system interaction" (Table 5); Flag keeps the sender's version bits and asks for nothing.
    flag = frame.flag & ~(FLAG_ANSWER | FLAG_SPLIT) & 0xFF
    return encode(f"QN={frame.qn};ST=91;CN={cn};PW={frame.pw};MN={frame.mn};Flag={flag};CP=&&{cp}&&")


def data_answer(frame: Frame) -> bytes:
    """9014 "数据应答" (Table C.14 and on): the upload was received."""
    return _answer(frame, "9014", "")


def notice_answer(frame: Frame) -> bytes:
    """9013 "通知应答": answer to a notice such as 1013 (time calibration request)."""
    return _answer(frame, "9013", "")


def request_answer(frame: Frame, qn_rtn: int) -> bytes:
    """9011 "请求应答" with QnRtn from Table 7 (1 ready, 2 refused, 3 PW wrong, 4 MN wrong, 8 CN wrong, ...)."""
    return _answer(frame, "9011", f"QnRtn={qn_rtn}")


class Deframer:
    """Cuts a TCP byte stream into frames: a frame may arrive in pieces, several may arrive at once,
    and garbage between frames is skipped up to the next ``##``."""

    def __init__(self, max_buffer: int = 64 * 1024) -> None:
        self._buffer = bytearray()
        self._max = max_buffer

    def feed(self, data: bytes) -> tuple[list[bytes], list[FrameError]]:
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        errors: list[FrameError] = []
        while True:
            start = buf.find(b"##")
            if start < 0:
                keep = 1 if buf[-1:] == b"#" else 0  # maybe the first half of the next ##
                if len(buf) > keep:
                    errors.append(FrameError("garbage", f"{len(buf) - keep} bytes outside any frame"))
                    del buf[: len(buf) - keep]
                break
            if start:
                errors.append(FrameError("garbage", f"{start} bytes before ##"))
                del buf[:start]
            if len(buf) < 6:
                break
            digits = bytes(buf[2:6])
            if not digits.isdigit():
                errors.append(FrameError("bad_length", f"length field {digits!r} is not 4 digits"))
                del buf[:2]
                continue
            total = int(digits) + 12
            if len(buf) < total:
                if len(buf) > self._max:
                    errors.append(FrameError("too_long", "a frame larger than the buffer; dropped"))
                    del buf[:2]
                    continue
                break
            if buf[total - 2 : total] != b"\r\n":
                # The length field lies (or a frame was cut): resynchronise on the next ##.
                errors.append(FrameError("bad_length", f"no CR LF where the length field ({digits.decode()}) says the frame ends"))
                del buf[:2]
                continue
            frames.append(bytes(buf[:total]))
            del buf[:total]
        return frames, errors
