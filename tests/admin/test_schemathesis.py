"""Schemathesis over the admin API's OpenAPI document: generated requests never get a 500, and
every response matches the document (status codes, content types, schemas).

Driven through schemathesis's Python API (one Hypothesis run per operation) against a real server
on a loopback port; its pytest plugin does not run on this pytest.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from freshid.admin import keys as key_store
from tests.conftest import RunningServer

EXAMPLES = 30


def test_no_server_errors_and_responses_match_the_document(server: RunningServer) -> None:
    with server.provider.db.write() as conn:
        _, key = key_store.create(
            conn, "schemathesis", frozenset(s.value for s in key_store.Scope), server.clock.now()
        )
    api = schemathesis.openapi.from_url(server.url + "/api/v1/openapi.json")
    headers = {"authorization": f"Bearer {key}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(headers=headers, timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text)
            # An opaque cursor is a string in the document, but not every string is a cursor:
            # "schema-valid data must be accepted" cannot hold for it, and is not checked.
            case.validate_response(
                response, headers=headers, excluded_checks=[checks.positive_data_acceptance]
            )

        run()
