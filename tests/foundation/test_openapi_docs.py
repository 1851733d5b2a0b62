"""/docs and /redoc work without internet and can authorise; the OpenAPI declares how every operation
is authenticated and what the device verify calls take."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

# Operations anyone may call (probes, scrapers, the trust anchor a bridge pins): no API key.
PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/v1/trust-anchor")}


def _referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(r"""(?:url|openapi_url|spec-url)\s*:\s*["']([^"']+)["']""", html)


def test_docs_pages_load_only_from_this_service(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = _referenced_urls(html.text)
        assert urls, f"{page} references nothing?"
        external = [u for u in urls if re.match(r"^(https?:)?//", u)]
        assert external == [], f"{page} loads {external}"
        for url in urls:  # every asset it needs is served, from the package
            assert client.get(url).status_code == 200, url
        assert "fonts.googleapis" not in html.text and "cdn." not in html.text
    assert '"validatorUrl": null' in client.get("/docs").text  # Swagger UI would call validator.swagger.io


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items() for method, op in item.items() if method in {"get", "post", "put", "patch", "delete"}]


def test_every_operation_declares_the_api_key_unless_public(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    missing, public_with_key = [], []
    for method, path, op in _operations(spec):
        declared = {name for requirement in op.get("security", []) for name in requirement}
        if (method, path) in PUBLIC:
            public_with_key += [f"{method} {path}"] if declared else []
        elif declared != {"bearer", "apiKey"}:
            missing.append(f"{method} {path}")
    assert missing == [] and public_with_key == []


def test_device_verify_calls_declare_their_request_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    verify = spec["paths"]["/v1/device/verify"]["post"]["requestBody"]["content"]
    assert set(verify["application/json"]["schema"]["required"]) == {"door_id", "qr_text"}
    assert set(verify["multipart/form-data"]["schema"]["required"]) == {"door_id", "image"}
    assert verify["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    face = spec["paths"]["/v1/device/face-verify"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in face


def test_the_declared_json_body_is_what_the_verify_call_accepts(client: TestClient, world: Any) -> None:
    """The schema is written by hand beside a hand-written reader: a body it allows must not be refused as invalid."""
    answer = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": "NH1:X", "challenge": "q83v"})
    assert answer.status_code == 200 and answer.json()["reasons"] == ["base45_invalid"]
    extra = client.post("/v1/device/verify", headers=world.auth("device1"), json={"door_id": world.ids["door1"], "qr_text": "NH1:X", "other": 1})
    assert extra.status_code == 422  # additionalProperties: false, as declared
