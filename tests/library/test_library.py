"""The prompt library: one row per normalised prompt, uses counted exactly (also under concurrency),
thumbnails that degrade gracefully, ranked full-text search that takes user text literally."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from edi_storage import InvalidInput, NotFound, Storage
from edi_storage.models import normalise_prompt, prompt_hash
from edi_storage.schemas.library import LibraryPromptOut
from edi_storage.testing.fixtures import postgres_url, scratch_postgres_database
from edi_storage.thumbnails import ThumbnailError, make_thumbnail

from ..plans import plan_nodes, plans_of, postgres_plans_of


def fullwidth(text: str) -> str:
    """The full-width forms of ASCII letters (U+FF01..U+FF5E) that NFKC folds back to ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def png(width: int = 800, height: int = 600, colour: tuple[int, int, int] = (200, 100, 50)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


# -- normalisation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant",
    ["A Sunset Over Mountains", "a sunset over mountains", "  a   sunset\tover\nmountains  ",
     fullwidth("A sunset over mountains"), "A SUNSET OVER MOUNTAINS"],
)  # fmt: skip
def test_variants_normalise_to_one_identity(variant: str) -> None:
    assert normalise_prompt(variant) == "a sunset over mountains"
    assert prompt_hash(variant) == prompt_hash("a sunset over mountains")


def test_variants_collapse_to_one_row_keeping_the_first_spelling(storage: Storage) -> None:
    first = storage.library.record_prompt("A Sunset  Over Mountains", model="sdxl")
    for variant in (
        "a sunset over mountains",
        " A SUNSET over mountains ",
        fullwidth("A sunset over mountains"),
    ):
        again = storage.library.record_prompt(variant)
        assert again.id == first.id
    stored = storage.library.get(first.id)
    assert stored.total_uses == 4
    assert stored.prompt_text == "A Sunset  Over Mountains"
    assert stored.model == "sdxl", "a use without a model keeps the stored one"
    assert stored.last_used_at >= stored.first_used_at
    assert storage.library.stats().total_prompts == 1


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_prompts_are_rejected(storage: Storage, text: str) -> None:
    with pytest.raises(InvalidInput, match="prompt_text"):
        storage.library.record_prompt(text)
    assert storage.library.stats().total_prompts == 0


# -- thumbnails ------------------------------------------------------------------------------------
def test_thumbnail_is_webp_longest_side_256_aspect_kept(storage: Storage) -> None:
    recorded = storage.library.record_prompt("wide", image_data=png(1920, 1080))
    assert (recorded.thumbnail_width, recorded.thumbnail_height) == (256, 144)
    data, mime = storage.library.get_thumbnail(recorded.id)
    assert mime == "image/webp"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP" and image.size == (256, 144)


def test_thumbnail_from_a_file_path_applies_exif_orientation(storage: Storage, tmp_path: Path) -> None:
    image = Image.new("RGB", (400, 200), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: the upright picture is 200 wide, 400 high
    path = tmp_path / "rotated.jpg"
    image.save(path, "JPEG", exif=exif)
    recorded = storage.library.record_prompt("portrait", image_path=path)
    assert (recorded.thumbnail_width, recorded.thumbnail_height) == (128, 256)


def test_realistic_thumbnails_are_about_25_kb() -> None:
    noise = Image.effect_noise((1024, 1024), 64).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "PNG")
    size = len(make_thumbnail(out.getvalue()).data)
    assert 5_000 < size < 40_000, size


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (b"certainly not an image", "not an image"),
        (png()[:300], "broken"),
        ("/no/such/file.png", "does not exist"),
    ],
)
def test_a_bad_image_still_records_the_prompt_without_a_thumbnail(
    storage: Storage, image: bytes | str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    kwargs = {"image_data": image} if isinstance(image, bytes) else {"image_path": image}
    recorded = storage.library.record_prompt("still counted", **kwargs)
    assert recorded.total_uses == 1 and recorded.thumbnail_bytes == 0
    assert recorded.thumbnail_error is not None and reason in recorded.thumbnail_error
    assert reason in caplog.text
    with pytest.raises(NotFound, match="thumbnail"):
        storage.library.get_thumbnail(recorded.id)


def test_a_decompression_bomb_is_refused_before_decoding(storage: Storage) -> None:
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # small file, 400 million pixels declared
    assert len(bomb.getvalue()) < 200_000
    with pytest.raises(ThumbnailError, match="decompression bomb"):
        make_thumbnail(bomb.getvalue())
    recorded = storage.library.record_prompt("bomb", image_data=bomb.getvalue())
    assert recorded.thumbnail_error is not None and "decompression bomb" in recorded.thumbnail_error


def test_a_later_thumbnail_replaces_an_earlier_one(storage: Storage) -> None:
    first = storage.library.record_prompt("p", image_data=png(100, 100))
    storage.library.record_prompt("p", image_data=png(300, 150))
    assert storage.library.get(first.id).thumbnail_height == 128


# -- search ----------------------------------------------------------------------------------------
@pytest.fixture
def library(storage: Storage) -> Storage:
    for text_, model in [
        ("sunset over mountains", "sdxl"),
        ("sunset sunset sunset beach", "sdxl"),
        ("city at night, neon lights", "flux"),
        ("mountain lake at dawn", "flux"),
        ('100% pure_water "quoted" AND OR NOT', None),
    ]:
        storage.library.record_prompt(text_, model=model)
    return storage


def texts(prompts: Sequence[LibraryPromptOut]) -> list[str]:
    return [p.prompt_text for p in prompts]


def test_search_ranks_better_matches_first(library: Storage) -> None:
    assert texts(library.library.search("sunset")) == ["sunset sunset sunset beach", "sunset over mountains"]


def test_search_needs_every_word_and_filters_by_model(library: Storage) -> None:
    assert texts(library.library.search("sunset mountains")) == ["sunset over mountains"]
    assert texts(library.library.search("night", model="sdxl")) == []
    assert texts(library.library.search("NEON")) == ["city at night, neon lights"]


@pytest.mark.parametrize("query", ['"quoted"', "AND", "NOT", "OR", "pure_water", "100%", "quoted*", "(water"])
def test_search_operators_are_taken_literally(library: Storage, query: str) -> None:
    """FTS5 syntax in user text neither errors nor changes the meaning of the query."""
    found = texts(library.library.search(query))
    assert found in ([], ['100% pure_water "quoted" AND OR NOT'])


def test_search_pagination_and_bad_queries(library: Storage) -> None:
    assert len(library.library.search("sunset", limit=1)) == 1
    assert texts(library.library.search("sunset", limit=1, offset=1)) == ["sunset over mountains"]
    with pytest.raises(InvalidInput, match="query"):
        library.library.search("   ")


def test_prefix_search_matches_word_starts_most_used_first(library: Storage) -> None:
    library.library.record_prompt("sunset over mountains")  # a second use
    assert texts(library.library.search("sun", prefix=True)) == [
        "sunset over mountains",
        "sunset sunset sunset beach",
    ]
    assert texts(library.library.search("sun mount", prefix=True)) == ["sunset over mountains"]
    assert texts(library.library.search("MOUNT", prefix=True)) == [
        "sunset over mountains",
        "mountain lake at dawn",
    ]
    assert texts(library.library.search("sun", prefix=True, model="flux")) == []
    assert texts(library.library.search("pure_wat", prefix=True)) == ['100% pure_water "quoted" AND OR NOT']
    assert library.library.search("sun", prefix=False) == []  # whole words only without it


@pytest.mark.parametrize("query", ['"quo', "AND*", "(wat", "!!! ne", "n:*", "o & ci"])
def test_prefix_search_takes_every_character_literally(library: Storage, query: str) -> None:
    """Neither FTS5's nor tsquery's operators in user text error or change what is matched."""
    library.library.search(query, prefix=True)  # no error is the point; results are checked above


def test_prefix_search_of_punctuation_alone_finds_nothing(library: Storage) -> None:
    """As a whole-word search of it does: neither holds a word to match."""
    assert library.library.search("!!! ...", prefix=True) == []
    assert library.library.search("!!! ...") == []


PREFIX_QUERIES = ["sun", "mo", "a", "ne li", "cit nig", "100", "pure", "x", "SUNSET", "s m"]


@pytest.mark.skipif(postgres_url() is None, reason="EDI_STORAGE_TEST_POSTGRES_URL is not set")
@pytest.mark.postgres
def test_prefix_search_gives_the_same_results_on_sqlite_and_postgres() -> None:
    prompts = [
        "sunset over mountains", "sunset sunset sunset beach", "city at night, neon lights",
        "mountain lake at dawn", '100% pure_water "quoted" AND OR NOT', "a sunny morning", "Sunflowers",
        "misty moors at sunrise", "neon-lit alley", "snow on the mountain, at night",
    ]  # fmt: skip
    uses = [3, 1, 2, 2, 1, 5, 1, 2, 1, 1]  # ties too, so that the order's tie-breakers are compared
    with scratch_postgres_database() as url:
        found = []
        for storage in (Storage("sqlite://"), Storage(url)):
            with storage:
                for text_, count in zip(prompts, uses, strict=True):
                    for _ in range(count):
                        storage.library.record_prompt(text_)
                found.append({q: texts(storage.library.search(q, prefix=True)) for q in PREFIX_QUERIES})
    assert found[0] == found[1]
    assert found[0]["sun"][0] == "a sunny morning" and len(found[0]["sun"]) == 5


# -- listing, stats, cleanup -----------------------------------------------------------------------
def test_popular_recent_and_keyset_pages(library: Storage) -> None:
    library.library.record_prompt("mountain lake at dawn")
    library.library.record_prompt("mountain lake at dawn")
    assert texts(library.library.popular(1)) == ["mountain lake at dawn"]
    assert texts(library.library.recent(1)) == ["mountain lake at dawn"]
    assert texts(library.library.popular(10, model="sdxl")) == [
        "sunset sunset sunset beach",
        "sunset over mountains",
    ]
    seen: list[str] = []
    cursor = None
    while True:
        page = library.library.browse(limit=2, cursor=cursor)
        seen += texts(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 5
    with pytest.raises(InvalidInput, match="cursor"):
        library.library.browse(cursor="not-a-cursor")


def test_stats(library: Storage) -> None:
    library.library.record_prompt("sunset over mountains", image_data=png())
    stats = library.library.stats()
    assert (stats.total_prompts, stats.total_uses, stats.prompts_with_thumbnails) == (5, 6, 1)
    assert stats.thumbnail_bytes > 0
    assert stats.per_model["sdxl"].uses == 3 and stats.per_model["(none)"].prompts == 1


def test_delete_and_cleanup(library: Storage) -> None:
    kept = library.library.record_prompt("with a picture", image_data=png())
    with pytest.raises(InvalidInput, match="refusing to delete everything"):
        library.library.cleanup()
    assert library.library.cleanup(older_than_days=1) == 0
    assert library.library.cleanup(without_thumbnail=True) == 5
    assert [p.id for p in library.library.recent(10)] == [kept.id]
    library.library.delete(kept.id)
    with pytest.raises(NotFound):
        library.library.delete(kept.id)
    with pytest.raises(NotFound):
        library.library.get(kept.id)


def test_search_stays_in_sync_after_deletes(library: Storage) -> None:
    library.library.cleanup(without_thumbnail=True)
    assert library.library.search("sunset") == []
    library.library.record_prompt("sunset again")
    assert texts(library.library.search("sunset")) == ["sunset again"]


# -- concurrency -----------------------------------------------------------------------------------
RECORDER = """
import sys
from edi_storage import Storage
storage = Storage(sys.argv[1])
for i in range(int(sys.argv[2])):
    storage.library.record_prompt(["a red fox", "A Red  Fox", "blue whale"][i % 3])
storage.close()
"""


def test_concurrent_processes_count_every_use_exactly(storage: Storage, tmp_path: Path) -> None:
    """Six processes recording the same prompts at once: no lost update, no error reaches a caller."""
    if storage.engine.dialect.name == "sqlite":  # an in-memory database cannot be shared: use a file
        target = f"sqlite:///{tmp_path / 'race.db'}"
        Storage(target).close()
    else:
        target = storage.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen([sys.executable, "-c", RECORDER, target, "30"], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    with Storage(target) as result:
        uses = {p.prompt_text.lower().split()[-1]: p.total_uses for p in result.library.popular(10)}
    assert uses == {"fox": 6 * 20, "whale": 6 * 10}


@pytest.mark.parametrize(
    ("method", "index"),
    [
        ("recent", "ix_prompt_library_last_used_at_id"),
        ("popular", "ix_prompt_library_total_uses_id"),
        ("recent_by_model", "ix_prompt_library_model_last_used_at"),
        ("browse", "ix_prompt_library_last_used_at_id"),
        ("search", "prompt_library_fts VIRTUAL TABLE INDEX"),
        ("prefix_search", "prompt_library_fts VIRTUAL TABLE INDEX"),
    ],
)
def test_library_queries_use_the_indexes(sqlite_storage: Storage, method: str, index: str) -> None:
    """EXPLAIN QUERY PLAN of the statements the service issues (captured as they run)."""
    library = sqlite_storage.library
    library.record_prompt("warm up")
    calls: dict[str, Callable[[], object]] = {
        "recent": lambda: library.recent(5),
        "popular": lambda: library.popular(5),
        "recent_by_model": lambda: library.recent(5, model="sdxl"),
        "browse": lambda: library.browse(5, cursor=library.browse(1).next_cursor or None),
        "search": lambda: library.search("warm"),
        "prefix_search": lambda: library.search("wa", prefix=True),
    }
    plans = plans_of(sqlite_storage, calls[method])
    assert any(index in plan for plan in plans), plans


@pytest.mark.skipif(postgres_url() is None, reason="EDI_STORAGE_TEST_POSTGRES_URL is not set")
@pytest.mark.postgres
def test_postgres_prefix_search_uses_the_gin_index() -> None:
    """With many prompts and fresh statistics, the word:* query is answered from the GIN index."""
    with scratch_postgres_database() as url, Storage(url) as storage:
        for n in range(2000):
            storage.library.record_prompt(f"prompt number {n} of a landscape series")
        storage.library.record_prompt("sunset over the bay")
        with storage.engine.begin() as conn:
            conn.execute(text("ANALYZE prompt_library"))
        plans = postgres_plans_of(storage, lambda: storage.library.search("suns", prefix=True))
    scans = {node.get("Index Name") for plan in plans for node in plan_nodes(plan)}
    assert "ix_prompt_library_search" in scans, plans


def test_orm_factory_rows_are_found_like_recorded_ones(storage: Storage) -> None:
    """The shipped ORM factory writes rows the service (and the FTS index) sees."""
    from edi_storage.testing import LibraryPromptFactory, create

    row_id = create(storage, LibraryPromptFactory, prompt_text="an owl at midnight").id
    assert storage.library.get(row_id).prompt_hash == prompt_hash("AN OWL at midnight")
    assert [p.id for p in storage.library.search("owl")] == [row_id]
    assert storage.library.record_prompt("an owl at  MIDNIGHT").id == row_id
