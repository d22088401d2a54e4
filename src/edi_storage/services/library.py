"""The prompt library service: record a use, find prompts again, look after the library.

``record_prompt`` is one upsert (``INSERT ... ON CONFLICT (prompt_hash) DO UPDATE``): several processes
recording the same prompt at once each add exactly one use, with no read-then-write race and no unique
violation reaching a caller. A thumbnail that cannot be made never costs the use: the prompt is recorded
without it, the reason is logged and returned in ``thumbnail_error``.

Every statement is ORM-enabled on ``LibraryPrompt``: a ``LibraryPrompt`` the application holds in the
same unit of work is refreshed by ``record_prompt`` and leaves the Session when a delete removes its row.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, delete, func, literal, select
from sqlalchemy.orm import Session

from edi_storage.dialects import dialect_of, prefix_words
from edi_storage.errors import InvalidInput, NotFound
from edi_storage.models.base import columns_of, table_of, utcnow
from edi_storage.models.library import LibraryPrompt, prompt_hash
from edi_storage.monitoring import measured
from edi_storage.schemas.common import check_limit, parse, rows_as
from edi_storage.schemas.library import (
    CURSOR_PATTERN,
    LibraryPage,
    LibraryPromptOut,
    LibrarySearch,
    LibraryStats,
    ModelUsage,
    RecordedPrompt,
    RecordPrompt,
)
from edi_storage.services.base import Service
from edi_storage.thumbnails import ThumbnailError, make_thumbnail

log = logging.getLogger(__name__)

P = LibraryPrompt
_THUMBNAIL = ("thumbnail_data", "thumbnail_mime", "thumbnail_width", "thumbnail_height")
_OUT_ATTRIBUTES = [c for c in columns_of(P) if c.key != "thumbnail_data"]
_OUT_COLUMNS = [
    *_OUT_ATTRIBUTES,
    func.coalesce(func.length(P.thumbnail_data), 0).label("thumbnail_bytes"),
]
_OUT_FIELDS = [c.key for c in _OUT_ATTRIBUTES]


def _rows(s: Session, statement: Select[Any]) -> list[LibraryPromptOut]:
    return rows_as(LibraryPromptOut, s.execute(statement))


class LibraryService(Service):
    @measured("library.record_prompt")
    def record_prompt(
        self,
        prompt_text: str,
        model: str | None = None,
        image_path: str | Path | None = None,
        image_data: bytes | None = None,
    ) -> RecordedPrompt:
        """Create the prompt, or add one use to it; make a WebP thumbnail when an image is given."""
        item = parse(
            RecordPrompt,
            {
                "prompt_text": prompt_text,
                "model": model,
                "image_path": None if image_path is None else str(image_path),
                "image_data": image_data,
            },
        )
        thumbnail_values: dict[str, Any] = {}
        thumbnail_error: str | None = None
        source = item.image_data if item.image_data is not None else item.image_path
        if source is not None:
            try:
                thumb = make_thumbnail(source)
                thumbnail_values = {
                    "thumbnail_data": thumb.data,
                    "thumbnail_mime": thumb.mime,
                    "thumbnail_width": thumb.width,
                    "thumbnail_height": thumb.height,
                }
            except ThumbnailError as error:
                thumbnail_error = str(error)
                log.warning("prompt recorded without a thumbnail: %s", error)
        now = utcnow()
        values = {
            "prompt_text": item.prompt_text,
            "prompt_hash": prompt_hash(item.prompt_text),
            "total_uses": 1,
            "first_used_at": now,
            "last_used_at": now,
            "model": item.model,
            **thumbnail_values,
        }
        with self._tx() as s:
            statement = dialect_of(s).insert(P).values(values)
            # A new model or thumbnail replaces the stored one; an absent one keeps it.
            kept = {c: func.coalesce(statement.excluded[c], getattr(P, c)) for c in ("model", *_THUMBNAIL)}
            upsert = statement.on_conflict_do_update(
                index_elements=[P.prompt_hash],
                set_={
                    "total_uses": P.total_uses + 1,
                    "last_used_at": statement.excluded.last_used_at,
                    **kept,
                },
            ).returning(P)
            # populate_existing: a LibraryPrompt already in the Session takes the stored row's values.
            stored = s.scalars(upsert, execution_options={"populate_existing": True}).one()
            out = {key: getattr(stored, key) for key in _OUT_FIELDS}
            out["thumbnail_bytes"] = len(stored.thumbnail_data or b"")
        return RecordedPrompt.model_validate({**out, "thumbnail_error": thumbnail_error})

    @measured("library.get")
    def get(self, prompt_id: int) -> LibraryPromptOut:
        with self._tx(readonly=True) as s:
            found = _rows(s, select(*_OUT_COLUMNS).where(P.id == prompt_id))
        if not found:
            raise NotFound("prompt", prompt_id)
        return found[0]

    @measured("library.get_thumbnail")
    def get_thumbnail(self, prompt_id: int) -> tuple[bytes, str]:
        """The thumbnail's bytes and MIME type; NotFound when the prompt or its thumbnail is missing."""
        with self._tx(readonly=True) as s:
            row = s.execute(select(P.thumbnail_data, P.thumbnail_mime).where(P.id == prompt_id)).first()
        if row is None:
            raise NotFound("prompt", prompt_id)
        if row.thumbnail_data is None or row.thumbnail_mime is None:
            raise NotFound("thumbnail of prompt", prompt_id)
        return bytes(row.thumbnail_data), row.thumbnail_mime

    @measured("library.search")
    def search(
        self, query: str, model: str | None = None, limit: int = 20, offset: int = 0, *, prefix: bool = False
    ) -> list[LibraryPromptOut]:
        """Prompts containing every word of ``query``, best match first (BM25 on SQLite, ts_rank on
        PostgreSQL); the words are matched as words, never read as search operators.

        ``prefix=True`` (search as you type) matches each word as the start of a word ("sun" finds
        "sunset"), and orders the matches the same way on both databases: most used first, then most
        recently used, then newest. BM25 and ts_rank weigh matches by different formulas, so a relevance
        order could not be the same on both; for completions, how often a prompt was used is what
        a user is after. Both databases find the same prompts for text in plain words; they split
        text joined by punctuation (hosts, e-mail addresses, paths, decimals) and accented letters
        differently (FTS5 splits ``example.com`` and folds ``café`` to ``cafe``; PostgreSQL's 'simple'
        parser keeps both whole)."""
        fields = {"query": query, "model": model, "limit": limit, "offset": offset, "prefix": prefix}
        q = parse(LibrarySearch, fields)
        with self._tx(readonly=True) as s:
            if q.prefix:
                words = prefix_words(q.query)
                if not words:  # punctuation only: no word to start, as a whole-word search finds none
                    return []
                statement = dialect_of(s).prefix_search(select(*_OUT_COLUMNS), table_of(P), words)
                statement = statement.order_by(P.total_uses.desc(), P.last_used_at.desc(), P.id.desc())
            else:
                statement = dialect_of(s).text_search(select(*_OUT_COLUMNS), table_of(P), q.query)
            if q.model is not None:
                statement = statement.where(P.model == q.model)
            return _rows(s, statement.limit(q.limit).offset(q.offset))

    @measured("library.popular")
    def popular(self, limit: int = 10, model: str | None = None) -> list[LibraryPromptOut]:
        return self._ordered((P.total_uses.desc(), P.id.desc()), limit, model)

    @measured("library.recent")
    def recent(self, limit: int = 10, model: str | None = None) -> list[LibraryPromptOut]:
        return self._ordered((P.last_used_at.desc(), P.id.desc()), limit, model)

    def _ordered(
        self, order: tuple[ColumnElement[Any], ...], limit: int, model: str | None
    ) -> list[LibraryPromptOut]:
        check_limit(limit, most=1000)
        statement = select(*_OUT_COLUMNS).order_by(*order).limit(limit)
        if model is not None:
            statement = statement.where(P.model == model)
        with self._tx(readonly=True) as s:
            return _rows(s, statement)

    @measured("library.browse")
    def browse(self, limit: int = 50, cursor: str | None = None) -> LibraryPage:
        """Keyset pagination, most recently used first: each page costs the same however deep it is."""
        check_limit(limit, most=1000)
        statement = select(*_OUT_COLUMNS).order_by(P.last_used_at.desc(), P.id.desc())
        if cursor is not None:
            last_used, last_id = decode_cursor(cursor)
            # A cursor's id may be past the 32-bit column (any 18 digits are a position): compared as 64-bit.
            statement = statement.where(
                (P.last_used_at < last_used)
                | ((P.last_used_at == last_used) & (P.id < literal(last_id, BigInteger())))
            )
        with self._tx(readonly=True) as s:
            items = _rows(s, statement.limit(limit + 1))
        more = len(items) > limit
        items = items[:limit]
        return LibraryPage(items=items, next_cursor=encode_cursor(items[-1]) if more else None)

    @measured("library.stats")
    def stats(self) -> LibraryStats:
        size = func.coalesce(func.length(P.thumbnail_data), 0)
        with self._tx(readonly=True) as s:
            total, uses, with_thumbs, thumb_bytes = s.execute(
                select(
                    func.count(P.id),
                    func.coalesce(func.sum(P.total_uses), 0),
                    func.count(P.thumbnail_data),
                    func.coalesce(func.sum(size), 0),
                )
            ).one()
            per_model = s.execute(
                select(P.model, func.count(P.id), func.sum(P.total_uses)).group_by(P.model)
            ).all()
        return LibraryStats(
            total_prompts=total,
            total_uses=int(uses),
            prompts_with_thumbnails=with_thumbs,
            thumbnail_bytes=int(thumb_bytes),
            per_model={m or "(none)": ModelUsage(prompts=n, uses=int(u)) for m, n, u in per_model},
        )

    @measured("library.delete")
    def delete(self, prompt_id: int) -> None:
        with self._tx() as s:
            # evaluate: a LibraryPrompt with this id that the Session holds is marked deleted with it.
            statement = delete(P).where(P.id == prompt_id).execution_options(synchronize_session="evaluate")
            if s.execute(statement).rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("prompt", prompt_id)

    @measured("library.cleanup")
    def cleanup(self, older_than_days: float | None = None, without_thumbnail: bool = False) -> int:
        """Delete prompts last used more than ``older_than_days`` ago and/or without a thumbnail (both
        given: both must hold); returns how many. At least one criterion is required."""
        criteria: list[ColumnElement[bool]] = []
        if older_than_days is not None:
            number = isinstance(older_than_days, int | float) and not isinstance(older_than_days, bool)
            if not number or not older_than_days >= 0:  # not a number, negative, or NaN
                raise InvalidInput.single(
                    "older_than_days", "must be a number of days, not negative", older_than_days
                )
            criteria.append(P.last_used_at < _days_ago(older_than_days))
        if without_thumbnail:
            criteria.append(P.thumbnail_data.is_(None))
        if not criteria:
            raise InvalidInput.single(
                "cleanup", "name older_than_days or without_thumbnail; refusing to delete everything", None
            )
        # fetch: the deleted ids come back (RETURNING) and those objects leave the Session; evaluating
        # the criteria in Python would need every held object's attributes loaded.
        statement = delete(P).where(*criteria).execution_options(synchronize_session="fetch")
        with self._tx() as s:
            return int(s.execute(statement).rowcount)  # type: ignore[attr-defined]


def _days_ago(days: float) -> datetime:
    try:
        return utcnow() - timedelta(days=days)
    except OverflowError:  # further back than a datetime reaches: no prompt was used that long ago
        return datetime.min.replace(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(item: LibraryPromptOut) -> str:
    """``<last_used_at in microseconds since 1970>_<id>``: the position after ``item``, exactly."""
    return f"{(item.last_used_at - _EPOCH) // _MICROSECOND}_{item.id}"


def decode_cursor(cursor: object) -> tuple[datetime, int]:
    """Any string of CURSOR_PATTERN is a position: one beyond the dates a datetime holds is before
    (or after) every prompt, so it gives the first page (or none), not an error."""
    if not isinstance(cursor, str) or re.fullmatch(CURSOR_PATTERN, cursor) is None:
        message = "is not a cursor: <microseconds since 1970>_<id>, as next_cursor gives"
        raise InvalidInput.single("cursor", message, cursor)
    micros, ident = cursor.split("_")
    try:
        stamp = _EPOCH + int(micros) * _MICROSECOND
    except OverflowError:
        stamp = (datetime.max if micros[0] != "-" else datetime.min).replace(tzinfo=UTC)
    return stamp, int(ident)
