"""What the server does with a station's frame: who sent it, whether to believe it, what to store,
which alarms follow, and what to answer (HJ 212-2017 section 6.5, Table 7, Appendix C).

- Unknown MN: answered 9011 QnRtn=4 ("MN 错误") when the frame asks for an answer, else dropped.
- CRC: a station is strict by default (Appendix A CRC only); ``settings.crc`` = ``"modbus_too"``
  also accepts CRC-16/MODBUS (old data loggers), ``"off"`` accepts any. A frame failing its
  station's check is dropped without an answer, as section 6.3.1 says ("如果 CRC 错误，执行结束").
- Wrong PW: answered 9011 QnRtn=3 ("PW 错误") when asked, and nothing is stored.
- Data uploads 2011/2051/2061/2031 are stored per pollutant once (a re-sent message is recognised)
  and answered 9014 when Flag asks; a split message (Flag bit D) is put together from PNO 1..PNUM
  and every part is answered.
- Other uploads are answered 9014, notices (1013) 9013, commands we do not serve 9011 QnRtn=8.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from idsvc.alarms import sensors, service
from idsvc.alarms.hj212 import limits as emission_limits
from idsvc.alarms.hj212.protocol import Frame, FrameError, data_answer, modbus_crc16, notice_answer, parse_cp, request_answer
from idsvc.alarms.models import EmissionRecord, Sensor, SensorFamily
from idsvc.core.db import Database, utcnow
from idsvc.core.sealing import Sealer
from idsvc.registry.models import Site
from idsvc.core.bus import Bus

log = logging.getLogger(__name__)

DATA_CNS = {"2011": "real-time", "2051": "minute", "2061": "hour", "2031": "day"}
ANSWERS = {"9011", "9012", "9013", "9014"}  # answers to commands; we send none, so nothing to do
NOTICES = {"1013"}
# Table 8 (数据标记). Faults raise station_fault; the others are states, not faults.
FLAGS = {"N": "normal", "F": "stopped", "M": "maintenance", "S": "manual value", "D": "fault", "C": "calibrating", "T": "over range", "B": "communication error"}
FAULT_FLAGS = {"D", "B", "T"}
CRC_POLICIES = ("strict", "modbus_too", "off")


@dataclass(frozen=True)
class Station:
    id: int
    mn: str
    password: str
    crc: str
    zone: ZoneInfo
    limits: dict[str, emission_limits.Limit]


@dataclass
class Outcome:
    """What happened to one frame: the answer to send (if any) and a word for the log and counters."""

    answer: bytes | None
    result: str
    station_id: int | None = None


@dataclass
class _Partial:
    parts: dict[int, str]
    pnum: int
    first: Frame
    started: float = field(default_factory=time.monotonic)


class Assembler:
    """Parts of split messages (PNUM/PNO) per station, command and data time; complete ones come out
    merged, and parts still incomplete after ``timeout_s`` come out as they are (never silently lost)."""

    def __init__(self, timeout_s: float = 300.0) -> None:
        self.timeout_s = timeout_s
        self._partials: dict[tuple[str, str, int, str], _Partial] = {}
        self._lock = threading.Lock()

    def add(self, frame: Frame) -> str | None:
        assert frame.pnum is not None and frame.pno is not None
        data_time = parse_cp(frame.cp).fields.get("DataTime", "")
        key = (frame.mn, frame.cn, frame.pnum, data_time)
        with self._lock:
            partial = self._partials.setdefault(key, _Partial({}, frame.pnum, frame))
            partial.parts[frame.pno] = frame.cp
            if len(partial.parts) < partial.pnum:
                return None
            del self._partials[key]
        return ";".join(partial.parts[n] for n in sorted(partial.parts))

    def expired(self) -> list[tuple[Frame, str, list[int]]]:
        """(first frame, merged CP of the parts that came, missing PNOs) of partials past their time."""
        now = time.monotonic()
        out = []
        with self._lock:
            for key, partial in list(self._partials.items()):
                if now - partial.started > self.timeout_s:
                    del self._partials[key]
                    missing = [n for n in range(1, partial.pnum + 1) if n not in partial.parts]
                    out.append((partial.first, ";".join(partial.parts[n] for n in sorted(partial.parts)), missing))
        return out


class Stations:
    """Frame handling against the database; one instance per server, called from worker threads."""

    def __init__(self, db: Database, sealer: Sealer, bus: Bus, cache_s: float = 10.0) -> None:
        self.db, self.sealer, self.bus = db, sealer, bus
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, Station | None]] = {}
        self.assembler = Assembler()
        self.counts: dict[str, int] = {}

    def count(self, result: str) -> None:
        self.counts[result] = self.counts.get(result, 0) + 1

    def station(self, mn: str) -> Station | None:
        hit = self._cache.get(mn)
        if hit is not None and time.monotonic() - hit[0] < self.cache_s:
            return hit[1]
        with self.db.session() as session:
            row = session.scalar(select(Sensor).where(Sensor.family == SensorFamily.hj212, Sensor.code == mn, Sensor.active.is_(True)))
            found = None
            if row is not None and row.sealed_password is not None:
                site = session.get(Site, row.site_id)
                password = self.sealer.open(row.sealed_password, sensors.password_aad(row.id)).decode()
                crc = row.settings.get("crc", "strict")
                found = Station(row.id, mn, password, crc if crc in CRC_POLICIES else "strict", ZoneInfo(site.timezone if site else "Asia/Shanghai"),
                                emission_limits.effective(site.settings if site else {}, row.settings))
        self._cache[mn] = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        self._cache.clear()

    def handle(self, frame: Frame) -> Outcome:
        outcome = self._handle(frame)
        self.count(outcome.result)
        if outcome.result not in ("stored", "duplicate", "answered", "part"):
            log.warning("hj212 frame from MN %s (QN %s, CN %s) %s", frame.mn[:32], frame.qn[:20], frame.cn[:8], outcome.result)
        return outcome

    def _handle(self, frame: Frame) -> Outcome:
        station = self.station(frame.mn)
        if station is None:
            return Outcome(request_answer(frame, 4) if frame.wants_answer else None, "unknown_mn")
        if not self._crc_accepted(station, frame):
            return Outcome(None, "bad_crc", station.id)
        if not hmac.compare_digest(frame.pw.encode(), station.password.encode()):
            return Outcome(request_answer(frame, 3) if frame.wants_answer else None, "bad_password", station.id)
        if frame.cn in DATA_CNS:
            cp: str | None = frame.cp
            if frame.split:
                cp = self.assembler.add(frame)
            result = "part" if cp is None else self._store(station, frame, cp)
            return Outcome(data_answer(frame) if frame.wants_answer else None, result, station.id)
        self._touch(station)
        if frame.cn in ANSWERS:
            return Outcome(None, "answered", station.id)
        if frame.cn in NOTICES:
            return Outcome(notice_answer(frame) if frame.wants_answer else None, "answered", station.id)
        if frame.cn[:1] in ("2", "3"):  # other uploads (2021 device status, 2081 restart time, 3020 info, ...)
            return Outcome(data_answer(frame) if frame.wants_answer else None, "answered", station.id)
        return Outcome(request_answer(frame, 8) if frame.wants_answer else None, "unsupported_cn", station.id)

    def flush_expired(self) -> None:
        """Store what came of split messages whose other parts never arrived."""
        for first, cp, missing in self.assembler.expired():
            station = self.station(first.mn)
            if station is not None:
                log.warning("hj212 split message from MN %s (CN %s) incomplete: parts %s never came; storing the rest", first.mn, first.cn, missing)
                self._store(station, first, cp)

    @staticmethod
    def _crc_accepted(station: Station, frame: Frame) -> bool:
        if frame.crc_ok or station.crc == "off":
            return True
        if station.crc == "modbus_too":
            crc = modbus_crc16(frame.data_segment)
            return frame.crc_sent in (crc, ((crc & 0xFF) << 8) | (crc >> 8))  # either byte order
        return False

    def _touch(self, station: Station) -> None:
        with self.db.session() as session:
            self._seen(session, station)

    def _seen(self, session: Session, station: Station) -> None:
        sensor = session.get(Sensor, station.id, with_for_update=True)
        if sensor is None:
            return
        now = utcnow()
        sensor.last_seen_at = now if sensor.last_seen_at is None or now > sensor.last_seen_at else sensor.last_seen_at
        if sensor.online is not True:
            sensor.online = True
            service.normal(session, self.bus, f"sensor:{sensor.id}", ["sensor_offline"], now, reason="back online")

    def _data_time(self, station: Station, frame: Frame, fields: dict[str, str]) -> datetime:
        for text in (fields.get("DataTime", ""), frame.qn[:14]):
            try:
                return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=station.zone)
            except ValueError:
                continue
        return utcnow()

    def _store(self, station: Station, frame: Frame, cp: str) -> str:
        try:
            area = parse_cp(cp)
        except FrameError as exc:
            return f"bad_cp ({exc})"
        data_time = self._data_time(station, frame, area.fields)
        with self.db.session() as session:
            self._seen(session, station)
            sensor = session.get(Sensor, station.id)
            if sensor is None:
                return "unknown_mn"
            fresh = 0
            for code, raw in area.pollutants.items():
                values = _numbers(raw)
                flag = raw.get("Flag")
                if not _insert_record(session, station.id, frame.cn, data_time, code, values, flag):
                    continue
                fresh += 1
                self._evaluate(session, sensor, station, frame.cn, data_time, code, values, flag)
            return "stored" if fresh or not area.pollutants else "duplicate"

    def _evaluate(self, session: Session, sensor: Sensor, station: Station, cn: str, data_time: datetime, code: str, values: dict[str, float], flag: str | None) -> None:
        source = f"sensor:{sensor.id}/{code}"
        actor = f"sensor:{sensor.id}"
        detail: dict[str, Any] = {"pollutant": code, "name": emission_limits.NAMES.get(code, code), "cn": cn, "data_time": data_time.isoformat()}
        if flag in FAULT_FLAGS:
            service.raise_alarm(session, self.bus, sensors.signal(sensor, "station_fault", data_time, source=source, flag=flag, meaning=FLAGS[flag], **detail), actor)
        elif flag in (None, "N"):
            service.normal(session, self.bus, source, ["station_fault"], data_time, reason="station reports normal")
        period = emission_limits.PERIOD_OF_CN.get(cn)
        limit = station.limits.get(code)
        avg = values.get("Avg")
        if period is None or limit is None or avg is None or flag not in (None, "N"):
            return  # only valid hour and day means are held to the limits
        bound = limit.hour if period == "hour" else limit.day
        if bound is None:
            return
        exceed_source = f"{source}/{period}"
        if avg > bound:
            signal = sensors.signal(sensor, "emission_exceedance", data_time, source=exceed_source, period=period, value=avg, limit=bound, unit=limit.unit, **detail)
            service.raise_alarm(session, self.bus, signal, actor)
        else:
            service.normal(session, self.bus, exceed_source, ["emission_exceedance"], data_time, reason=f"{period} mean within the limit")


def _numbers(raw: dict[str, str]) -> dict[str, float]:
    out = {}
    for suffix, text in raw.items():
        if suffix in ("Flag", "EFlag", "SampleTime", "SN", "Info"):
            continue
        try:
            value = float(text)
        except ValueError:
            continue  # a value that is not a number is kept out rather than guessed
        if value == value and value not in (float("inf"), float("-inf")):
            out[suffix] = value
    return out


def _insert_record(session: Session, sensor_id: int, cn: str, data_time: datetime, code: str, values: dict[str, float], flag: str | None) -> bool:
    """Store once; False when this (station, command, time, pollutant) is stored already."""
    table = EmissionRecord.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(sensor_id=sensor_id, cn=cn, data_time=data_time, pollutant=code[:16], values=values, flag=(flag or None) and flag[:4], received_at=utcnow())
    return session.execute(stmt.on_conflict_do_nothing().returning(table.c.id)).first() is not None
