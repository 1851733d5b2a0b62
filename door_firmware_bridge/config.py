"""The site's TOML config, validated before anything touches a door.

One file per site: the service and the bridge's device key, the MQTT broker, the doors with their
adapters, and the offline and temperature policies. :func:`load` raises :class:`ConfigError` naming
the field at fault (``doors[2].pulse_s: ...``) so an integrator can fix it without reading code.
"""

from __future__ import annotations

import base64
import enum
import json
import tomllib
from datetime import timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field, IPvAnyAddress, ValidationError, model_validator

HARD_STALENESS_CAP_S = 24 * 3600  # design/passes.md: default 15 min, never more than 24 h


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(Strict):
    url: Annotated[str, Field(pattern=r"^https?://", description="Base URL of the idsvc service.")]
    device_key: str = Field("", description="The bridge's device API key (role device, bound to these doors).")
    device_key_file: Path | None = Field(None, description="File holding the key instead (mode 0600).")
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 1.5

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if bool(self.device_key) == (self.device_key_file is not None):
            raise ValueError("give exactly one of device_key and device_key_file")
        return self

    def key(self) -> str:
        return self.device_key or (self.device_key_file.read_text().strip() if self.device_key_file else "")


class BrokerConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    client_id: str = Field("", description="Unique per bridge: two clients with one id knock each other off the broker.")
    username: str | None = None
    password: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=600)] = 15


class JournalConfig(Strict):
    path: Path = Path("var/bridge-journal.db")
    upload_batch: Annotated[int, Field(ge=1, le=500)] = 200
    upload_interval_s: Annotated[float, Field(gt=0, le=300)] = 1.0
    keep_uploaded_days: Annotated[float, Field(ge=1, le=3650, description="Uploaded events older than this are pruned; pending ones never.")] = 30


class FeedKind(str, enum.Enum):
    http = "http"
    file = "file"


class OfflineConfig(Strict):
    enabled: bool = True
    max_staleness_s: Annotated[int, Field(ge=10, le=HARD_STALENESS_CAP_S)] = 900
    root_public_key: str = Field("", description="Base64 DER (SPKI) of the service's trust-list root key, pinned here.")
    feed: FeedKind = FeedKind.http
    feed_dir: Path | None = Field(None, description="For feed = 'file': where a sync agent drops the signed snapshot feed.cose.")
    refresh_s: Annotated[float, Field(ge=1, le=60, description="Poll the feed at least this often (the version stream nudges sooner).")] = 30.0
    cache_dir: Path = Path("var/bridge-cache")
    site_key_file: Path | None = Field(None, description="The site's feed key (`idsvc sync face-key --site S`, base64, mode 0600): plates and faces offline.")
    faces: bool = Field(False, description="Decide faces offline from the feed's templates (the site must share them; needs site_key_file and the face model pack).")

    def site_key(self) -> bytes | None:
        if self.site_key_file is None:
            return None
        key = base64.b64decode(self.site_key_file.read_text().strip(), validate=True)
        if len(key) != 32:
            raise ValueError("the site key is 32 bytes (base64)")
        return key

    @model_validator(mode="after")
    def _feed(self) -> Self:
        if self.enabled and not self.root_public_key:
            raise ValueError("offline decisions need root_public_key (set enabled = false to run online only)")
        if self.enabled and self.feed is FeedKind.file and self.feed_dir is None:
            raise ValueError("feed = 'file' needs feed_dir")
        if self.faces and self.site_key_file is None:
            raise ValueError("faces = true needs site_key_file (the templates in the feed are sealed with the site key)")
        return self


class TemperatureConfig(Strict):
    high_c: Annotated[float, Field(ge=36.0, le=40.0, description="Deny at or above (37.3 usual in China, 38.0 elsewhere).")] = 37.3
    low_c: Annotated[float, Field(ge=30.0, le=36.5, description="Deny below: a reading this low is a bad measurement.")] = 35.0
    plausible_min_c: float = 32.0
    plausible_max_c: float = 45.0
    window_s: Annotated[float, Field(gt=0, le=60, description="A reading counts for a scan only this close in time, from the same device.")] = 5.0

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.plausible_min_c <= self.low_c < self.high_c <= self.plausible_max_c:
            raise ValueError("need plausible_min_c <= low_c < high_c <= plausible_max_c")
        return self


class Adapter(str, enum.Enum):
    mqtt = "mqtt"
    isapi = "isapi"
    dahua = "dahua"


class Profile(str, enum.Enum):
    acs = "acs"  # the schema of docs/bridge.md
    nuki = "nuki"  # Nuki MQTT API v1.5 (Smart Lock 3.0 Pro, 4th generation)
    tasmota = "tasmota"  # a Tasmota relay driving a strike or a magnetic lock
    zigbee2mqtt = "zigbee2mqtt"  # a Zigbee lock through Zigbee2MQTT


class Wiring(str, enum.Enum):
    """How the lock fails when it loses power: a hardware property of the door, recorded for the installer."""

    fail_secure = "fail_secure"  # electric strike: locked without power, the relay powers it to open
    fail_safe = "fail_safe"  # magnetic lock: open without power, the relay cuts its power to open


class Lane(str, enum.Enum):
    pass_only = "pass_only"
    plate_only = "plate_only"
    plate_and_pass = "plate_and_pass"


class IsapiMode(str, enum.Enum):
    remote_check = "remote_check"  # the terminal asks (remoteCheck events), the bridge answers, the terminal shows it and opens
    bridge_opens = "bridge_opens"  # a reader that only reports scans: the bridge decides and opens (RemoteControl/door)


class IsapiEvents(str, enum.Enum):
    listen = "listen"  # the terminal posts to the bridge's listener (its HTTP listening host)
    alert_stream = "alert_stream"  # the bridge holds GET /ISAPI/Event/notification/alertStream open (terminal cannot reach the bridge)


class IsapiTerminal(Strict):
    base_url: Annotated[str, Field(pattern=r"^https?://")]
    username: str
    password: str
    door_no: Annotated[int, Field(ge=1, le=64)] = 1
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 2.0
    allowed_sources: list[IPvAnyAddress] = Field(default_factory=list, description="Addresses allowed to post this door's events (the terminal and its cameras).")
    mode: IsapiMode = Field(IsapiMode.remote_check, description="remote_check: the terminal asks and the bridge answers; bridge_opens: a reader the bridge drives.")
    events: IsapiEvents = Field(IsapiEvents.listen, description="listen: the terminal posts to the listener; alert_stream: the bridge reads the terminal's event stream.")
    heartbeat_s: Annotated[float, Field(ge=1, le=180, description="alert_stream: the terminal's heartbeat interval; silence for twice this reconnects.")] = 30.0
    sync_people: bool = Field(False, description="Keep the terminal's own person list equal to the people granted at this door (terminals that recognise faces or cards themselves).")
    face_library: str = Field("1", description="sync_people: the terminal's face picture library (FDID) whose faces follow the list.")


class DahuaTerminal(Strict):
    """A Dahua access terminal or controller through its HTTP API (eventManager.cgi, accessControl.cgi)."""

    base_url: Annotated[str, Field(pattern=r"^https?://")]
    username: str
    password: str
    channel: Annotated[int, Field(ge=1, le=64, description="The door (accessControl.cgi channel, from 1).")] = 1
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 2.0
    heartbeat_s: Annotated[int, Field(ge=1, le=60, description="Heartbeat the event stream is asked for; silence for twice this reconnects.")] = 5
    utc_offset: Annotated[str, Field(pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$", description="The terminal's clock zone, e.g. +08:00: its record search reads and writes times in its local time.")] = "+00:00"
    record_page: Annotated[int, Field(ge=1, le=1024, description="Records asked for per record search (recordFinder.cgi count) when fetching what the stream missed.")] = 100

    def zone(self) -> timezone:
        sign = -1 if self.utc_offset[0] == "-" else 1
        hours, minutes = self.utc_offset[1:].split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


class CameraConfig(Strict):
    source: str = Field(description="rtsp://... URL or a video file path.")
    open_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    read_timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    watchdog_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    repeat_s: Annotated[float, Field(ge=0, le=60, description="The same QR text again within this time is one scan.")] = 3.0
    face_frames: bool = Field(False, description="Also send frames showing one face (and no QR) to the service's face verify; needs `idsvc models install` on the bridge host.")
    face_every_s: Annotated[float, Field(gt=0, le=10, description="How often a frame is checked for a face (detection costs ~6 ms).")] = 0.5
    face_min_px: Annotated[int, Field(ge=32, le=2000, description="Smallest face worth sending, in pixels: passers-by in the background are not.")] = 80
    face_repeat_s: Annotated[float, Field(ge=0, le=60, description="After a face frame was sent, the next one waits this long (one person, one request).")] = 5.0


class DoorConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$", description="The door's MQTT topic segment.")]
    door_id: Annotated[int, Field(ge=1, description="The door's id in the service.")]
    site_id: Annotated[int, Field(ge=1, description="The service's site of this door (the sync feed is per site).")]
    adapter: Adapter = Adapter.mqtt
    profile: Profile = Profile.acs
    device_topic: str = Field("", description="nuki: nuki/<id in hex>; tasmota: the device's Topic; zigbee2mqtt: zigbee2mqtt/<friendly name>.")
    relay: Annotated[int, Field(ge=1, le=32, description="tasmota: the relay (Power<n>) wired to the lock.")] = 1
    wiring: Wiring = Field(Wiring.fail_secure, description="fail_secure (strike) or fail_safe (magnetic lock): how the lock is wired; see docs/bridge.md.")
    contact_sensor: str = Field("", description="zigbee2mqtt: the door sensor's topic (zigbee2mqtt/<friendly name>), contact true = closed.")
    device_relock_s: Annotated[float | None, Field(ge=1, le=3600, description="nuki/zigbee2mqtt: the lock relocks itself this long after an unlock (Nuki Auto Lock, Zigbee auto_relock_time); unset = the bridge locks it after the pulse.")] = None
    command_key: Base64Bytes | None = Field(None, description="acs locks: base64 secret shared with the lock; commands then carry an hmac it checks.")
    isapi: IsapiTerminal | None = None
    dahua: DahuaTerminal | None = None
    camera: CameraConfig | None = None
    pulse_s: Annotated[float, Field(ge=1, le=30, description="Unlock for this long; the device relocks by itself.")] = 5.0
    command_ttl_s: Annotated[float, Field(ge=1, le=30, description="A command not executed within this is void.")] = 5.0
    ack_timeout_s: Annotated[float, Field(gt=0, le=30)] = 3.0
    relock_grace_s: Annotated[float, Field(ge=0, le=60)] = 3.0
    held_open_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    require_temperature: bool = False
    offline_qr: bool = True
    lane: Lane = Lane.pass_only
    plate_window_s: Annotated[float, Field(gt=0, le=120)] = 20.0
    plate_min_confidence: Annotated[int, Field(ge=0, le=100)] = 80

    @model_validator(mode="after")
    def _adapter_fields(self) -> Self:
        if self.adapter is Adapter.isapi and self.isapi is None:
            raise ValueError("adapter 'isapi' needs an [doors.isapi] table")
        if self.adapter is Adapter.dahua and self.dahua is None:
            raise ValueError("adapter 'dahua' needs a [doors.dahua] table")
        if self.lane is not Lane.pass_only and (self.isapi is None or not self.isapi.allowed_sources):
            # A plate is the camera's word, unsigned: only the camera itself may say it.
            raise ValueError(f"lane '{self.lane.value}' needs isapi.allowed_sources (the addresses of the terminal and plate camera)")
        if self.adapter is Adapter.mqtt and self.profile is not Profile.acs and not self.device_topic:
            raise ValueError(f"profile '{self.profile.value}' needs device_topic")
        if self.device_relock_s is not None and self.profile not in (Profile.nuki, Profile.zigbee2mqtt):
            raise ValueError("device_relock_s is for locks that do not end a pulse by themselves (nuki, zigbee2mqtt)")
        if self.command_key is not None and len(self.command_key) < 16:
            raise ValueError("command_key must be at least 16 random bytes (base64)")
        if self.command_ttl_s < self.ack_timeout_s:
            raise ValueError("command_ttl_s must be at least ack_timeout_s (an ack may not outlive its command)")
        return self


class ListenerConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8099


class BridgeConfig(Strict):
    site: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$", description="MQTT topic segment of the site.")]
    service: ServiceConfig
    broker: BrokerConfig = BrokerConfig()
    journal: JournalConfig = JournalConfig()
    offline: OfflineConfig
    temperature: TemperatureConfig = TemperatureConfig()
    listener: ListenerConfig = ListenerConfig()
    doors: Annotated[list[DoorConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [d.name for d in self.doors]
        ids = [d.door_id for d in self.doors]
        if len(set(names)) != len(names) or len(set(ids)) != len(ids):
            raise ValueError("door names and door_ids must be unique")
        if len({d.site_id for d in self.doors}) != 1:
            raise ValueError("all doors of one bridge belong to one site (one config file per site)")
        return self

    @property
    def service_site_id(self) -> int:
        return self.doors[0].site_id

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"door-bridge-{self.site}"

    def door(self, name: str) -> DoorConfig:
        return next(d for d in self.doors if d.name == name)


class ConfigError(Exception):
    """The config cannot be used; the message names every field at fault."""


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse(data: dict[str, object], origin: str = "config") -> BridgeConfig:
    try:
        return BridgeConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{origin}: {_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def to_toml(data: dict[str, Any], _prefix: str = "") -> str:
    """Just enough TOML to write a config back out (scalars, lists, tables, arrays of tables), for
    tools that generate site files (the demo, benchmarks, tests). ``data`` is ``model_dump(mode="json")``."""

    def is_tables(value: object) -> bool:
        return isinstance(value, list) and bool(value) and isinstance(value[0], dict)

    lines = [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in data.items() if v is not None and not isinstance(v, dict) and not is_tables(v)]
    for key, value in data.items():
        name = f"{_prefix}{key}"
        if isinstance(value, dict):
            lines += ["", f"[{name}]", to_toml(value, f"{name}.")]
        elif is_tables(value):
            for item in value:
                lines += ["", f"[[{name}]]", to_toml(item, f"{name}.")]
    return "\n".join(lines)


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's TOML; any way it cannot be read is a ConfigError naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config is a TOML file (docs/bridge.md)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load(path: Path) -> BridgeConfig:
    return parse(read_toml(path), str(path))
