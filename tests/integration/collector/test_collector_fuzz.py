"""Schemathesis against the collector's served OpenAPI document, with a bounded number of examples per
operation: no 5xx, and every answer as documented (status code, content type, headers, body schema).

Schemathesis' pytest plugin does not load under this pytest, so the test drives its Python API: one Hypothesis
run per operation of the served document (derandomized, so CI sees the same examples every time).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.integration.collector.conftest import SHOP_KEY, CollectorProcess

pytestmark = pytest.mark.integration

EXAMPLES = 40


def test_the_collector_answers_as_documented(collector: CollectorProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{collector.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"POST /v1/batch", "GET /readyz", "GET /healthz"}
    calls: dict[str, set[int]] = {}
    for operation in operations:
        statuses = calls.setdefault(f"{operation.method.upper()} {operation.path}", set())

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def call(case: schemathesis.Case) -> None:
            # positive_data_acceptance is left out: the document types the envelope, not every payload's rules
            # (those are the SDK's validation, answered per item), so a schema-valid body may be refused (400).
            response = case.call_and_validate(headers={"X-Touchpoint-Key": SHOP_KEY},
                                              excluded_checks=[positive_data_acceptance])
            statuses.add(response.status_code)

        call()
    print(calls)
    assert collector.get("/healthz").status == 200, "the collector still serves"
    assert len(calls["POST /v1/batch"]) >= 2, f"the fuzzer saw too few kinds of answer: {calls}"
