"""Schemathesis against the app's own OpenAPI document: generated requests for every operation, on this
test's database (SQLite, and PostgreSQL when configured).

Each operation gets up to 25 requests built from its schema (positive: valid by the document) and up
to 10 built to violate it (negative; on SQLite only, since such a request is refused by validation
before it reaches the database). Every response must be no server error, carry a status code and a
content type the document lists for the operation, and match the documented schema of its body. The
figures (operations, examples, failures) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("fastapi")  # the api extra; without it there is nothing to test
pytest.importorskip("schemathesis")  # the dev extra

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Tally:
    operations: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)


def fuzz(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, tally: Tally) -> None:
    """Up to MAX_EXAMPLES[mode] generated requests to one operation; a failure is recorded, not raised, so
    that every operation is tried and the figures are complete."""

    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        tally.examples += 1
        case.call_and_validate(checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters or body has nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE, operation.label
        tally.not_applicable.append(operation.label)
    except Exception as failure:  # noqa: BLE001 (a FailureGroup, or whatever the app raised: tallied)
        tally.failures.append(f"{operation.label}: {failure}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_response_conforms_to_the_openapi_document(
    app: FastAPI, mode: GenerationMode, request: pytest.FixtureRequest
) -> None:
    if mode is GenerationMode.NEGATIVE and request.node.callspec.params["storage_factory"] != "sqlite":
        pytest.skip("negative requests are refused by validation, before the database: SQLite is enough")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tally = Tally()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        tally.operations += 1
        fuzz(operation, mode, tally)
    print(
        f"\nschemathesis ({mode.value}): {tally.operations} operations, {tally.examples} examples, "
        f"{len(tally.failures)} failures, {len(tally.not_applicable)} without inputs to invalidate"
    )
    assert tally.operations == 40
    assert tally.examples >= tally.operations * 3
    assert not tally.failures, "\n\n".join(tally.failures)
