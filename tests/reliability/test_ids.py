"""Defect 5 of issue 11: every id in a path, query or form is one bounded type, so an id no row can
have (above 2^31 - 1, or 2^63, or 2^64) is a 4xx, never a 500 (an OverflowError in the driver)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.world import World

HUGE = (2**31, 2**63, 2**64, -1)


def _integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    if schema.get("type") == "integer":
        return [schema]
    return [s for key in ("anyOf", "oneOf") for sub in schema.get(key, []) for s in _integer_schemas(sub)]


def _integer_inputs(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, where and name, schema) of every integer parameter and form or JSON field."""
    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                found += [(method, path, f"{param['in']}:{param['name']}", s) for s in _integer_schemas(param.get("schema", {}))]
            for content in op.get("requestBody", {}).get("content", {}).values():
                ref = content["schema"].get("$ref")
                schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else content["schema"]
                for name, prop in schema.get("properties", {}).items():
                    for s in _integer_schemas(prop) + _integer_schemas(prop.get("items", {})):
                        found.append((method, path, f"body:{name}", s))
    return found


def test_every_integer_input_has_bounds(client: TestClient) -> None:
    inputs = _integer_inputs(client.get("/openapi.json").json())
    assert len(inputs) > 50
    unbounded = [(m, p, w) for m, p, w, s in inputs if "maximum" not in s or s["maximum"] > 2**63 - 1]
    assert unbounded == []


def _path_routes(client: TestClient) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [(m, p) for p, ops in spec["paths"].items() for m in ops if re.search(r"\{\w*id\}", p)]


@pytest.mark.parametrize("value", HUGE)
def test_an_id_no_row_can_have_is_a_4xx_on_every_route(client: TestClient, world: World, value: int) -> None:
    failures = []
    for method, path in _path_routes(client):
        url = re.sub(r"\{\w*id\}", str(value), path).replace("{kind}", "png").replace("{name}", "purge").replace("{kid}", "x")
        answer = client.request(method.upper(), url, headers=world.auth("district"), json={})
        if not 400 <= answer.status_code < 500:
            failures.append((method, path, answer.status_code))
    assert failures == []


@pytest.mark.parametrize("value", HUGE)
def test_face_verify_form_ids_are_bounded(client: TestClient, world: World, value: int) -> None:
    answer = client.post("/v1/device/face-verify", headers=world.auth("device1"), data={"door_id": str(value), "person_id": str(value)}, files={"image": ("f.png", b"x", "image/png")})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_input"
