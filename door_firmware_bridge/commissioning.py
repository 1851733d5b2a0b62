"""What ``door-bridge check-config`` asks the outside world before a bridge goes live: the config can
be perfectly formed and still wrong (a mistyped key, a service that is not reachable from the site,
a door id that does not exist or is bound to another device, a broker that refuses the login)."""

from __future__ import annotations

import aiomqtt
import httpx

from door_firmware_bridge.config import BridgeConfig


async def check(cfg: BridgeConfig) -> list[str]:
    """One line per problem, each naming the field to fix; empty when all is well."""
    return await _service(cfg) + await _broker(cfg)


async def _service(cfg: BridgeConfig) -> list[str]:
    try:
        async with httpx.AsyncClient(base_url=cfg.service.url, timeout=cfg.service.timeout_s * 2) as client:
            answer = await client.get("/v1/device/self", headers={"Authorization": f"Bearer {cfg.service.key()}"})
    except httpx.HTTPError as exc:
        return [f"service.url: {cfg.service.url} is not reachable from here ({type(exc).__name__}: {exc})"]
    if answer.status_code in (401, 403):
        code = _error_code(answer)
        return [f"service.device_key: the service refused the key ({code}); create a device key for the bridge device (docs/bridge.md, commissioning)"]
    if answer.status_code != 200:
        return [f"service.url: the service answered {answer.status_code} to GET /v1/device/self ({_error_code(answer)})"]
    me = answer.json()
    problems = []
    bound = set(me.get("door_ids") or [])
    for index, door in enumerate(cfg.doors):
        if door.door_id not in bound:
            problems.append(f"doors[{index}].door_id: door {door.door_id} ({door.name}) does not exist or is not bound to this bridge's device {me.get('device_id')}")
        if me.get("site_id") is not None and door.site_id != me["site_id"]:
            problems.append(f"doors[{index}].site_id: the bridge's device belongs to site {me['site_id']}, not {door.site_id}")
    return problems


def _error_code(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {answer.status_code}"


async def _broker(cfg: BridgeConfig) -> list[str]:
    if not any(d.adapter.value == "mqtt" for d in cfg.doors):
        return []
    client = aiomqtt.Client(cfg.broker.host, cfg.broker.port, identifier=f"{cfg.client_id}-check", username=cfg.broker.username,
                            password=cfg.broker.password, protocol=aiomqtt.ProtocolVersion.V5, timeout=5)
    try:
        async with client:
            return []
    except aiomqtt.MqttError as exc:
        return [f"broker: {cfg.broker.host}:{cfg.broker.port} refused or is not reachable ({exc}); check broker.host/port/username/password"]
