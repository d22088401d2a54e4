"""The prompt library (prompt-library.md): every distinct prompt once, with its use count and a WebP
thumbnail of an image it made.

The reference calls the table ``prompts``; that name is the session history's, so the library is
``prompt_library``. A prompt's identity is the SHA-256 of its normalised text (``normalise_prompt``),
so "A Sunset", "a  sunset " and its full-width form are one row; the stored text keeps the
first spelling. Full-text search is SQLite FTS5 (an external-content table kept by triggers) or a
PostgreSQL GIN index, both created by revision 0005.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, LargeBinary, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from edi_storage.models.base import Base, utcnow

FTS_TABLE = "prompt_library_fts"
PG_SEARCH_INDEX = "ix_prompt_library_search"


def normalise_prompt(prompt_text: str) -> str:
    """Unicode NFKC, case folded, whitespace runs collapsed to one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", prompt_text).casefold().split())


def prompt_hash(prompt_text: str) -> str:
    return hashlib.sha256(normalise_prompt(prompt_text).encode("utf-8")).hexdigest()


class LibraryPrompt(Base):
    __tablename__ = "prompt_library"

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_text: Mapped[str]
    prompt_hash: Mapped[str]
    total_uses: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    first_used_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.current_timestamp())
    model: Mapped[str | None]
    thumbnail_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    thumbnail_mime: Mapped[str | None]
    thumbnail_width: Mapped[int | None]
    thumbnail_height: Mapped[int | None]

    __table_args__ = (
        UniqueConstraint("prompt_hash"),
        CheckConstraint("total_uses >= 1", name="total_uses"),
        CheckConstraint("length(prompt_hash) = 64", name="prompt_hash"),
        CheckConstraint("thumbnail_width > 0 AND thumbnail_height > 0", name="thumbnail_size"),
        # recent() and keyset pages; popular(); filters by model with recency.
        Index(None, "last_used_at", "id"),
        Index(None, "total_uses", "id"),
        Index(None, "model", "last_used_at"),
        {"sqlite_autoincrement": True},
    )
