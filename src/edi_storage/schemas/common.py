"""Building blocks every schema shares, and the one place Pydantic errors become ``InvalidInput``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationError,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlalchemy import Result
from typing_extensions import TypeAliasType

from edi_storage.errors import FieldError, InvalidInput


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps SQLite and PostgreSQL equal.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    if not value.split():
        raise ValueError("must contain more than white space")
    return value


def _aware_utc(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC; everything comes back aware, in UTC."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC: outside what datetime holds
        raise ValueError("is outside the range of dates that can be stored (years 1 to 9999, UTC)") from None


# Every text given as input has a length limit (stated in the OpenAPI document as maxLength): far past
# any real name, path, comment or label, far below what would strain a server. Prompts may be longer.
MAX_TEXT_CHARS = 10_000
MAX_PROMPT_CHARS = 20_000
# The NUL rule as the OpenAPI document states it. Keys, and texts with a pattern of their own, say it
# with "not": pydantic turns a key's "pattern" into patternProperties (which would leave the keys that
# do not match unconstrained), and a text's own pattern would replace this one.
NUL_FREE: JsonDict = {"pattern": "^[^\\u0000]*$"}
NUL_FREE_AS_NOT: JsonDict = {"not": {"pattern": "\\u0000"}}


_NO_NUL = AfterValidator(_no_nul)
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, json_schema_extra=NUL_FREE), _NO_NUL]
RequiredText = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT_CHARS, json_schema_extra=NUL_FREE), _NO_NUL
]
# A key of a JSON object given as input.
Key = Annotated[str, Field(max_length=MAX_TEXT_CHARS, json_schema_extra=NUL_FREE_AS_NOT), _NO_NUL]
# A limit can be narrowed on top of these (Annotated[Text, Field(max_length=255)]) but not widened (both
# would apply): prompts have their own types.
LongText = Annotated[str, Field(max_length=MAX_PROMPT_CHARS, json_schema_extra=NUL_FREE), _NO_NUL]
RequiredLongText = Annotated[
    str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, json_schema_extra=NUL_FREE), _NO_NUL
]
# White space as Python's str.split() and str.isspace() know it, written out as a JSON Schema character
# class (not \s, whose meaning differs between regex engines), so that the document states exactly the
# rule that _not_blank enforces: the text holds a character outside this class.
WHITE_SPACE_CLASS = (
    "\\t-\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NOT_BLANK: JsonDict = {"allOf": [{"pattern": f"[^{WHITE_SPACE_CLASS}]"}]}
# A required text that must hold more than white space (a prompt, a search query).
Words = Annotated[RequiredText, Field(json_schema_extra=NOT_BLANK), AfterValidator(_not_blank)]
LongWords = Annotated[RequiredLongText, Field(json_schema_extra=NOT_BLANK), AfterValidator(_not_blank)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
NonNegativeFloat = Annotated[float, Field(ge=0.0)]
# Stored durations and losses: at most 10^15, far past any real one. Beyond about 10^100 SQLite cannot
# print a REAL exactly (its printf), which the one-statement graph load relies on (dialects.py).
MAX_MAGNITUDE = 1e15
StoredAmount = Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
# Integer columns are INTEGER: 32 bits on PostgreSQL. Bounding the input to that range refuses a larger
# number as InvalidInput on both backends, not as a database (PostgreSQL) or driver (SQLite) error.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
Int = Annotated[int, Field(ge=INT_MIN, le=INT_MAX)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT_MAX)]
UTCDatetime = Annotated[datetime, AfterValidator(_aware_utc)]
JSONObject = dict[str, Any]


MAX_JSON_DEPTH = 100  # nesting levels of a JSON value: far past real metadata, far below recursion limits


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """Every key and string of a JSON object storable on both backends: PostgreSQL's JSON types refuse
    ``\\u0000`` and lone surrogates (``"\\ud800"``, which JSON text can carry and UTF-8 cannot). JSON has
    no NaN or infinity (SQLite's JSON functions and PostgreSQL refuse them), and a value nested deeper
    than ``MAX_JSON_DEPTH`` would overflow the recursion of the JSON encoder."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _no_nul(item)
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must not contain lone surrogates (invalid Unicode)") from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or infinity (JSON has neither)")
        elif isinstance(item, dict | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"must not nest deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                item = item.values()
            pending.extend((child, depth + 1) for child in item)
    return value


# What _storable_json accepts, as the OpenAPI document states it (recursively, as components/JSONValue).
# Only the document uses it: validating through a recursive union would be slower, and _storable_json
# also refuses lone surrogates and nesting deeper than MAX_JSON_DEPTH, which JSON Schema cannot say.
_JSONString = Annotated[str, Field(json_schema_extra=NUL_FREE)]
_JSONKey = Annotated[str, Field(json_schema_extra=NUL_FREE_AS_NOT)]
JSONValue = TypeAliasType(
    "JSONValue",
    "_JSONString | int | float | bool | list[JSONValue] | dict[_JSONKey, JSONValue] | None",
)
_JSON_OBJECT_SHAPE = TypeAdapter(dict[_JSONKey, JSONValue])


class _DocumentedAsStorableJSON:
    def __get_pydantic_json_schema__(
        self, _core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(_JSON_OBJECT_SHAPE.core_schema)


JSONInput = Annotated[JSONObject, AfterValidator(_storable_json), _DocumentedAsStorableJSON()]


class InputModel(BaseModel):
    """Input: unknown fields are errors (a typo must not be silently dropped), NaN and infinity too."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


M = TypeVar("M", bound=BaseModel)


def check_limit(limit: int, *, most: int, field: str = "limit") -> int:
    """A page size between 1 and ``most``, or InvalidInput naming the field and the value."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise InvalidInput.single(field, f"must be a whole number between 1 and {most}", limit)
    return limit


def _loc_part(part: str | int) -> str:
    """A key as a field name; quoted when it would not show (``""``, white space, control characters)."""
    name = str(part)
    return name if name and name.strip() == name and name.isprintable() else repr(name)


def field_errors(error: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError(
            field=prefix + ".".join(_loc_part(part) for part in e["loc"])
            if e["loc"]
            else prefix.rstrip(".") or "input",
            message=e["msg"],
            value=e.get("input"),
        )
        for e in error.errors(include_url=False)
    ]


def parse(model: type[M], data: M | Mapping[str, Any], *, prefix: str = "") -> M:
    """Validate ``data`` as ``model`` (an instance passes through); InvalidInput names every bad field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(field_errors(exc, prefix)) from None


@cache
def _list_of(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def models_from(model: type[M], rows: list[dict[str, Any]]) -> list[M]:
    """Output models from rows as dicts, in one call into pydantic-core (not one call per row)."""
    return _list_of(model).validate_python(rows)


def rows_as(model: type[M], result: Result[Any]) -> list[M]:
    """Output models from a query's rows (as dicts: faster to validate than attribute access)."""
    return models_from(model, [dict(row) for row in result.mappings()])
