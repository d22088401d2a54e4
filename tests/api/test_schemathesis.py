"""Schemathesis against the app's own OpenAPI document: generated requests for every operation, on this
test's database (SQLite, and PostgreSQL when configured).

Each operation gets up to 25 requests built from its schema (positive: valid by the document) and up
to 10 built to violate it (negative; on SQLite only, since such a request is refused by validation
before it reaches the database). Every response passes every check Schemathesis has (as
``schemathesis run --checks all`` does): no server error; a status code, content type, headers and
body the document lists; a valid request accepted and an invalid one refused. The stateful test
follows the document's links (a created session or prompt read, replaced, deleted). The figures
(operations, examples, failures) are printed; run with ``-s`` to see them.
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
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import negative_data_rejection

from edi_storage import Storage
from edi_storage.models import Base

MAX_EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def excluded_checks(case: Case[Any]) -> list[Any] | None:
    """Every check but one for a form body: a form carries text only, so a "wrong type" in one
    (model=[] sent as the text "[]") is a valid form value, not invalid data to be refused."""
    return [negative_data_rejection] if (case.media_type or "").startswith(FORMS) else None


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
        case.call_and_validate(excluded_checks=excluded_checks(case))

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
    assert tally.operations == 55
    assert tally.examples >= tally.operations * 3
    assert not tally.failures, "\n\n".join(tally.failures)


def test_the_links_of_the_document_hold_in_sequences_of_calls(app: FastAPI, storage: Storage) -> None:
    """Sequences of calls that follow the links (create a session, then read, replace or delete it):
    every response passes every check. Links are declared where an id comes back (api/errors.links).

    Each sequence starts from empty tables: with rows left by the sequences before it, Hypothesis
    replaying a sequence would see other responses and fail as a flaky strategy (one run in three)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    declared = [
        name
        for path in schema.raw_schema["paths"].values()
        for operation in path.values()
        for response in operation.get("responses", {}).values()
        for name in response.get("links", {})
    ]
    assert {"GetSession", "DeleteSession", "GetPrompt", "DeletePrompt"} <= set(declared)

    class Links(schema.as_state_machine()):  # type: ignore[misc]
        def teardown(self) -> None:
            with storage.engine.begin() as conn:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())

        def validate_response(self, response: Any, case: Case[Any], **kwargs: Any) -> None:
            case.validate_response(  # as RecordingStateMachine does, with the one exclusion
                response,
                excluded_checks=excluded_checks(case),
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    run_state_machine_as_test(
        Links,
        settings=settings(
            max_examples=15,
            stateful_step_count=5,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
