"""Property-based hostile input: schemathesis against the live OpenAPI schema.

Every operation of the running service (auth on, an admin key, batch jobs enabled) gets a
bounded number of generated requests, valid and invalid ones; no response may be a 5xx and
every documented response must conform to the schema.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests._support.registry import build_registry
from tests._support.replica import service_settings, serving
from trajops.serving import AppOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 25
"""Generated requests per operation (CI keeps the run bounded)."""


def test_every_operation_survives_generated_input(tmp_path: Path) -> None:
    registry = build_registry(tmp_path / "registry")
    batch_root = tmp_path / "batch"
    batch_root.mkdir()
    settings = service_settings(tmp_path / "home", tracking_uri=registry.uri, batch_root=batch_root)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    with serving(settings, AppOptions(poll=False, freeze_gc=False)) as (url, http):
        key = {"X-API-Key": http.headers["X-API-Key"]}
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=key)
        operations = [result.ok() for result in schema.get_all_operations()]

        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, headers=key, timeout=30)
                statuses[response.status_code] += 1
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

            try:
                exercise()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label}: {str(exc)[:1500]}")
        assert http.get("/healthz").status_code == 200, "the service survived"

    assert len(operations) >= 15, [op.label for op in operations]
    assert not failures, "\n\n".join(failures)
    assert sum(statuses.values()) >= 5 * len(operations), statuses
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
    assert not any(s >= 500 for s in statuses), statuses
