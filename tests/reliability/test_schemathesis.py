"""Security regression: schemathesis generates requests from the OpenAPI document for every operation,
sent with a district admin's key (the widest scope) to the app on the test database; no answer may be
a 5xx. Five examples per operation in CI (about 500 cases); the full run is bench/fuzz_api.py."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from idsvc.app import create_app
from idsvc.context import AppContext
from tests.world import World

EXAMPLES = int(os.environ.get("IDSVC_SCHEMATHESIS_EXAMPLES", "5"))


def server_errors(app: Any, token: str, examples: int) -> tuple[int, list[tuple[str, int, str]]]:
    """(cases sent, [(operation, status, body)] of every 5xx), through one client of the running app."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    client = TestClient(app, base_url="http://idsvc", raise_server_exceptions=False)
    sent, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        if "text/event-stream" in str(operation.definition.raw.get("responses", {})):
            continue  # a stream answers for an hour: its refusals are tested in tests/sync and tests/alarms


        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def send(case: schemathesis.Case) -> None:
            nonlocal sent
            sent += 1
            request = case.as_transport_kwargs(base_url="http://idsvc", headers={"Authorization": f"Bearer {token}"})
            request.pop("cookies", None)  # the API reads none
            response = client.request(**request)
            if response.status_code >= 500:
                failures.append((case.operation.label, response.status_code, response.text[:300]))

        send()
    return sent, failures


def test_no_generated_request_gets_a_server_error(ctx: AppContext, world: World) -> None:
    app = create_app(ctx)
    with TestClient(app):  # the lifespan once: decision log, alarm runtime
        sent, failures = server_errors(app, world.tokens["district"], EXAMPLES)
    print(f"schemathesis: {sent} cases")
    assert sent > 200
    assert failures == []
