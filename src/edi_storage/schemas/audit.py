"""Schemas of the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import Field

from edi_storage.models.audit import AUDITED_TABLES
from edi_storage.schemas.common import InputModel, JSONObject, OutputModel, Text, UTCDatetime
from edi_storage.vocabulary import AuditOperation

AuditedTable = Literal["sessions", "prompts", "entities", "validations", "user_feedback"]


class AuditQuery(InputModel):
    table_name: AuditedTable | None = None
    record_id: Text | None = None
    operation: AuditOperation | None = None
    since: UTCDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=10_000)] = 100


class AuditRecord(OutputModel):
    id: int
    table_name: str
    record_id: str | None
    operation: AuditOperation
    user_id: str | None
    timestamp: datetime
    changes: JSONObject | None


assert set(get_args(AuditedTable)) == set(AUDITED_TABLES), "AuditedTable must list the audited tables"
