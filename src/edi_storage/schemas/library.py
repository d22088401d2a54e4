"""Schemas of the prompt library."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from edi_storage.schemas.common import (
    InputModel,
    LongWords,
    NonNegativeInt,
    OutputModel,
    Text,
    Words,
)

Limit = Annotated[int, Field(ge=1, le=1000)]
PromptText = LongWords  # 20,000 characters, more than white space


class RecordPrompt(InputModel):
    prompt_text: PromptText
    model: Text | None = None
    image_path: Text | None = None
    image_data: bytes | None = None

    @model_validator(mode="after")
    def _one_image(self) -> RecordPrompt:
        if self.image_path is not None and self.image_data is not None:
            raise ValueError("give image_path or image_data, not both")
        return self


class LibrarySearch(InputModel):
    query: Annotated[Words, Field(max_length=1000)]
    model: Text | None = None
    limit: Limit = 20
    offset: NonNegativeInt = 0
    prefix: bool = False  # every word matches the start of a word ("sun" finds "sunset")


class LibraryPromptOut(OutputModel):
    id: int
    prompt_text: str
    prompt_hash: str
    total_uses: int
    first_used_at: datetime
    last_used_at: datetime
    model: str | None
    thumbnail_mime: str | None
    thumbnail_width: int | None
    thumbnail_height: int | None
    thumbnail_bytes: int  # 0 when the prompt has no thumbnail


class RecordedPrompt(LibraryPromptOut):
    """What ``record_prompt`` returns: the row, and why no thumbnail was made when one was asked for."""

    thumbnail_error: str | None = None


# A browse position: last_used_at in microseconds since 1970, and the id (digits bounded so that both
# fit a 64-bit integer).
CURSOR_PATTERN = r"^-?[0-9]{1,18}_[0-9]{1,18}$"


class LibraryPage(OutputModel):
    """One page of the library, most recently used first; pass ``next_cursor`` to get the next."""

    items: list[LibraryPromptOut]
    next_cursor: str | None


class ModelUsage(OutputModel):
    prompts: int
    uses: int


class LibraryStats(OutputModel):
    total_prompts: int
    total_uses: int
    prompts_with_thumbnails: int
    thumbnail_bytes: int
    per_model: dict[str, ModelUsage]
