"""The sensor ingest's TOML config: service, broker and journal as in the bridge's config, and the sensors.

    site = "village-1"
    zigbee2mqtt_base = "zigbee2mqtt"       # Zigbee2MQTT's base_topic
    [service]  url = "...", device_key_file = "/etc/door-bridge/sensor-ingest.key"
    [broker]   host = "127.0.0.1"
    [journal]  path = "/var/lib/door-bridge/sensors.db"

    [[sensors]]                            # state on zigbee2mqtt/<friendly_name>
    code = "smoke-101"                     # the sensor's code in the service
    family = "zigbee2mqtt"

    [[sensors]]                            # tele/<topic>/SENSOR and tele/<topic>/LWT
    code = "efm-b1"
    family = "tasmota"
    topic = "efm_b1"
    readings = { residual_current_ma = ["ANALOG.A1"], line_temperature_c = ["DS18B20-1.Temperature", "DS18B20-2.Temperature"] }
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, ValidationError, model_validator

from door_firmware_bridge.config import BrokerConfig, ConfigError, JournalConfig, ServiceConfig, Strict, _where, read_toml

# What a reading may say, in the service's words (idsvc.alarms.api.ReadingValues).
BOOLEAN_KEYS = ("smoke", "gas", "carbon_monoxide", "water_leak", "tamper", "battery_low")
NUMBER_KEYS = ("battery", "linkquality", "gas_value", "residual_current_ma", "line_temperature_c")
READING_KEYS = BOOLEAN_KEYS + NUMBER_KEYS
TOPIC_SEGMENT = r"^[^#+/\x00]{1,64}$"


class Family(str, enum.Enum):
    zigbee2mqtt = "zigbee2mqtt"
    tasmota = "tasmota"


class SensorConfig(Strict):
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}$", description="The sensor's code in the service.")]
    family: Family
    topic: Annotated[str, Field(pattern=TOPIC_SEGMENT)] | None = Field(None, description="Zigbee2MQTT friendly name or Tasmota topic; default the code.")
    readings: dict[str, list[Annotated[str, Field(min_length=1, max_length=128)]]] = Field(
        default_factory=dict, description="Normalised key -> JSON paths ('ENERGY.Current') in the payload; several paths: the highest value counts."
    )

    @model_validator(mode="after")
    def _keys(self) -> Self:
        unknown = set(self.readings) - set(NUMBER_KEYS)
        if unknown:
            raise ValueError(f"readings: unknown keys {sorted(unknown)}; use {', '.join(NUMBER_KEYS)}")
        if self.family is Family.tasmota and not self.readings:
            raise ValueError("a tasmota sensor needs readings (which SENSOR values mean what)")
        return self

    @property
    def device_topic(self) -> str:
        return self.topic or self.code


class SensorIngestConfig(Strict):
    site: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$")]
    service: ServiceConfig
    broker: BrokerConfig = BrokerConfig()
    journal: JournalConfig = JournalConfig(path=Path("var/sensor-journal.db"))
    zigbee2mqtt_base: Annotated[str, Field(pattern=r"^[^#+\x00]{1,128}$")] = "zigbee2mqtt"
    tasmota_prefix: Annotated[str, Field(pattern=r"^[^#+\x00]{1,128}$", description="Tasmota's %prefix% for telemetry (FullTopic default: tele).")] = "tele"
    heartbeat_s: Annotated[float, Field(ge=0.1, le=60, description="Tell the service the ingest hears its broker this often (it allows 180 s).")] = 30.0
    sensors: Annotated[list[SensorConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        codes = [s.code for s in self.sensors]
        topics = [(s.family, s.device_topic) for s in self.sensors]
        if len(set(codes)) != len(codes) or len(set(topics)) != len(topics):
            raise ValueError("sensor codes and topics must be unique")
        return self

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"sensor-ingest-{self.site}"


def parse(data: dict[str, object], origin: str = "config") -> SensorIngestConfig:
    try:
        return SensorIngestConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{origin}: {_where(e['loc'])}: {e['msg']}" for e in exc.errors())) from None


def load(path: Path) -> SensorIngestConfig:
    return parse(read_toml(path), str(path))
