"""The ``edi-storage`` command line, run in-process against SQLite files in a temporary directory."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from typer.testing import Result

from edi_storage import SessionCreate, SessionStatus, Storage
from edi_storage.cli import app
from edi_storage.migrate.scripts import alembic_config, head_revision
from edi_storage.migrate.state import SchemaState
from edi_storage.testing import SessionCreateFactory, examples

from .cli_runner import cli_runner

runner = cli_runner()


def invoke(*args: str, url: str | None = None) -> Result:
    """Run the command as a user would, on a terminal wide enough that table cells are not wrapped."""
    options = ["--url", url] if url is not None else []
    return runner.invoke(app, [*options, *args], env={"COLUMNS": "200"})


def parsed(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A database at head, as `edi-storage upgrade` leaves it (no other command creates one)."""
    created = f"sqlite:///{tmp_path}/x.db"
    Storage(created).close()
    return created


def reference_session(session_id: str, **overrides: Any) -> dict[str, Any]:
    """The reference example under another id; its prompt holds Rich markup that must print literally."""
    example = examples.reference_session(id=session_id, **overrides)
    if "prompts" not in overrides:
        example["prompts"][0]["positive_prompt"] = "dramatic sky with [storm] clouds"
    return example


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def session_count(url: str) -> int:
    with Storage(url) as storage:
        return storage.sessions.get_session_count()


def assert_clean_failure(result: Result, code: int, *fragments: str) -> None:
    """A failure the user can act on: the exit code, the message on stderr, no traceback, no stdout."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in result.stderr


# -- demo ------------------------------------------------------------------------------------------
def test_demo_works_as_the_first_command_of_a_fresh_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`edi-storage demo` with no options is the README's first step: it must create ./edi_sessions.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDI_STORAGE_URL", raising=False)

    result = invoke("demo", "--sessions", "25")

    assert result.exit_code == 0, result.output
    url = f"sqlite:///{tmp_path / 'edi_sessions.db'}"
    with Storage(url) as storage:
        assert storage.schema_status().state is SchemaState.CURRENT
        assert storage.sessions.get_session_count() == 25
        recent = storage.sessions.get_recent_sessions(10)
    assert "most recent sessions" in result.stdout
    assert "most used prompts in the library" in result.stdout
    assert "best curated images in the gallery" in result.stdout
    assert all(s.id in result.stdout for s in recent)
    assert "statistics" in result.stdout
    assert "25" in result.stdout


def test_demo_refuses_a_database_that_holds_sessions_unless_forced(url: str) -> None:
    """A second demo would add a second library and gallery to the user's data: it asks for --force.
    With it, the same seed gives the same ids, so sessions are replaced rather than doubled."""
    assert invoke("demo", "--sessions", "120", "--seed", "7", url=url).exit_code == 0
    with Storage(url) as storage:
        library_before = storage.library.stats()
    assert_clean_failure(invoke("demo", "--sessions", "120", "--seed", "7", url=url), 1, "--force")
    with Storage(url) as storage:
        assert storage.library.stats() == library_before, "the refused demo wrote nothing"
    assert invoke("demo", "--sessions", "120", "--seed", "7", "--force", url=url).exit_code == 0
    assert session_count(url) == 120


def test_url_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --url the CLI must use EDI_STORAGE_URL, as the library and Alembic do."""
    path = tmp_path / "from-env.db"
    monkeypatch.setenv("EDI_STORAGE_URL", f"sqlite:///{path}")

    assert invoke("upgrade").exit_code == 0
    assert path.exists()
    assert parsed(invoke("stats", "--json"))["total_sessions"] == 0


# -- history ---------------------------------------------------------------------------------------
@pytest.fixture
def history_url(url: str) -> str:
    rows = [
        ("s1", SessionStatus.COMPLETED, 0.9, "make the sky dramatic", 1),
        ("s2", SessionStatus.COMPLETED, 0.5, "turn the tree golden", 2),
        ("s3", SessionStatus.FAILED, 0.95, "remove the car", 3),
        ("s4", SessionStatus.IN_PROGRESS, None, "blur the sky " + "and the clouds " * 10, 4),
    ]
    sessions = [
        SessionCreateFactory.build(
            id=session_id,
            status=status,
            final_alignment_score=score,
            naive_prompt=prompt,
            # fixed, so that no random path contains a searched word
            image_path=f"/photos/{session_id}.jpg",
            created_at=datetime(2026, 1, day, 12, tzinfo=UTC),
        )
        for session_id, status, score, prompt, day in rows
    ]
    with Storage(url) as storage:
        storage.sessions.batch_save_sessions(sessions)
    return url


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], ["s4", "s3", "s2", "s1"]),
        (["--status", "completed"], ["s2", "s1"]),
        (["--min-score", "0.8"], ["s3", "s1"]),
        (["--search", "sky"], ["s4", "s1"]),
        (["--from", "2026-01-02", "--to", "2026-01-03T23:59:59+00:00"], ["s3", "s2"]),
        (["--order-by", "created_at asc", "--limit", "2", "--offset", "1"], ["s2", "s3"]),
        (["--order-by", "final_alignment_score DESC"], ["s3", "s1", "s2", "s4"]),
    ],
)
def test_history_filters_reach_the_service(history_url: str, options: list[str], expected: list[str]) -> None:
    """Each option must arrive at query_history as the filter it names, and --json must be pure JSON."""
    rows = parsed(invoke("history", "--json", *options, url=history_url))
    assert [row["id"] for row in rows] == expected


def test_history_table_shows_every_id_and_shortens_long_prompts(history_url: str) -> None:
    """The table is for reading: full ids (to pass to `show`), prompts cut to one short cell."""
    result = invoke("history", url=history_url)

    assert result.exit_code == 0, result.output
    assert all(session_id in result.stdout for session_id in ("s1", "s2", "s3", "s4"))
    assert "make the sky dramatic" in result.stdout
    assert "blur the sky and the clouds" in result.stdout
    assert "…" in result.stdout
    assert "and the clouds " * 10 not in result.stdout


def assert_usage_error(result: Result, *fragments: str) -> None:
    """A mistake on the command line: exit 2 as Click gives it, naming what the user typed, no traceback,
    nothing on stdout."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    message = " ".join(result.stderr.replace("│", " ").split())
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (["--min-score", "1.5"], ["'--min-score'", "less than or equal to 1", "1.5"]),
        (["--order-by", "sideways"], ["'--order-by'", "'sideways'", "'created_at desc'"]),
        (["--from", "yesterday"], ["'--from'", "valid datetime", "'yesterday'"]),
        (["--limit", "0"], ["'--limit'", "greater than or equal to 1", "(got 0)"]),
        (["--status", "done"], ["'--status'", "'done'", "'completed'"]),
        (["--limit", "0", "--min-score", "2"], ["--limit:", "(got 0)", "--min-score:", "(got 2.0)"]),
    ],
)
def test_history_rejects_a_bad_filter_naming_the_flag(
    history_url: str, options: list[str], fragments: list[str]
) -> None:
    """Validation stays in the service; the CLI names the flag the user typed (not the service's field),
    the value, and what it accepts, and exits 2 like every other usage mistake."""
    result = invoke("history", *options, url=history_url)
    assert_usage_error(result, *fragments)
    for field in ("min_score", "order_by", "date_from", "status_filter"):
        assert field not in result.stderr


def test_history_filters_by_user_and_project(url: str) -> None:
    with Storage(url) as storage:
        for session_id, user, project in (("a", "ann", "p1"), ("b", "ann", "p2"), ("c", "bob", "p1")):
            storage.sessions.save_session(reference_session(session_id, user_id=user, project_id=project))

    def found(*options: str) -> set[str]:
        return {row["id"] for row in parsed(invoke("history", "--json", *options, url=url))}

    assert found("--user", "ann") == {"a", "b"} and found("--project", "p1") == {"a", "c"}
    assert found("--user", "ann", "--project", "p1") == {"a"}
    assert_usage_error(invoke("history", "--user", "a\x00b", url=url), "'--user'")


def test_tags_metadata_and_one_row_corrected_from_the_command_line(url: str, tmp_path: Path) -> None:
    with Storage(url) as storage:
        storage.sessions.save_session(reference_session("fix", session_tags=["sky"]))
    assert parsed(invoke("tags", "fix", "--add", "storm", "--remove", "sky", "--json", url=url)) == ["storm"]
    assert parsed(invoke("metadata", "fix", "--set", "lens=23", "--set", "name=x100", url=url))["lens"] == 23
    assert_usage_error(invoke("metadata", "fix", "--set", "novalue", url=url), "'--set'", "KEY=VALUE")
    row = parsed(invoke("show", "fix", "--json", url=url))["prompts"][0]
    row["positive_prompt"] = "corrected"
    (tmp_path / "row.json").write_text(json.dumps(row))
    assert (
        invoke("row", "update", "PROMPT", str(row["id"]), str(tmp_path / "row.json"), url=url).exit_code == 0
    )
    assert parsed(invoke("show", "fix", "--json", url=url))["prompts"][0]["positive_prompt"] == "corrected"
    elsewhere = invoke("row", "delete", "prompt", str(row["id"]), "--session", "other", url=url)
    assert elsewhere.exit_code == 1 and "not found" in elsewhere.stderr
    assert invoke("row", "delete", "prompt", str(row["id"]), url=url).exit_code == 0
    assert row["id"] not in [p["id"] for p in parsed(invoke("show", "fix", "--json", url=url))["prompts"]]
    assert_usage_error(invoke("row", "delete", "prompts", "1", url=url), "'prompts'", "'prompt'")


def test_reports_print_tables_and_charts_and_json(url: str) -> None:
    assert invoke("report", "feedback", url=url).stdout.strip() == "feedback: none"
    assert invoke("demo", "--sessions", "40", url=url).exit_code == 0
    feedback = invoke("report", "feedback", url=url)
    assert feedback.exit_code == 0 and "accept" in feedback.stdout and "█" in feedback.stdout
    assert sum(parsed(invoke("report", "feedback", "--json", url=url))["per_type"].values()) > 0
    labels = parsed(invoke("report", "labels", "--limit", "2", "--json", url=url))
    assert len(labels) == 2 and labels[0]["entities"] >= labels[1]["entities"]
    trend = invoke("report", "trend", "--period", "WEEK", url=url)
    assert trend.exit_code == 0 and "sessions" in trend.stdout and any(c in trend.stdout for c in "▁▂▃▄▅▆▇█")
    weeks = parsed(invoke("report", "trend", "--period", "week", "--json", url=url))
    assert sum(p["sessions"] for p in weeks) == 40
    assert_usage_error(invoke("report", "trend", "--from", "soon", url=url), "'--from'", "'soon'")


def test_gallery_scores_and_delete_from_the_command_line(url: str, tmp_path: Path) -> None:
    (tmp_path / "img.png").write_bytes(b"png")
    with Storage(url) as storage:
        image_id = storage.gallery.add_image({"filename": "img.png", "prompt": "p", "model_id": "m"}).id
    assert invoke("gallery", "scores", str(image_id), "--final", "8.5", url=url).exit_code == 0
    with Storage(url) as storage:
        assert storage.gallery.get_image(image_id).final_score == 8.5
    assert_usage_error(
        invoke("gallery", "scores", str(image_id), "--final", "12", url=url), "'--final'", "12"
    )
    assert_usage_error(invoke("gallery", "scores", str(image_id), url=url), "at least one score", "--final")
    deleted = invoke("gallery", "delete", str(image_id), "--gallery-dir", str(tmp_path), url=url)
    assert deleted.exit_code == 0 and "and its file" in deleted.stdout and not (tmp_path / "img.png").exists()


def test_flags_naming_a_choice_take_it_in_any_case(history_url: str) -> None:
    completed = parsed(invoke("history", "--status", "COMPLETED", "--json", url=history_url))
    assert [row["id"] for row in completed] == ["s2", "s1"]
    ascending = parsed(
        invoke("history", "--order-by", "Created_At ASC", "--limit", "2", "--json", url=history_url)
    )
    assert [row["id"] for row in ascending] == ["s1", "s2"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["prune", "--dry-run"], ["--older-than-days", "--max-bytes", "refusing to prune everything"]),
        (["prune", "--older-than-days", "0"], ["'--archive'", "name a file to archive it to"]),
        (["library", "cleanup"], ["--older-than-days or --without-thumbnail", "refusing"]),
    ],
)
def test_a_missing_criterion_names_the_flags(history_url: str, args: list[str], fragments: list[str]) -> None:
    result = invoke(*args, url=history_url)
    assert_usage_error(result, *fragments)
    assert "older_than_days" not in result.stderr and "(got None)" not in result.stderr
    assert session_count(history_url) == 4


# -- show, stats -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["show", "missing"], ["show", "missing", "--json"], ["export", "missing"]])
def test_an_unknown_id_is_a_clean_error(url: str, args: list[str]) -> None:
    """A mistyped id must say which id was not found and exit 1, not print a traceback or empty JSON."""
    assert_clean_failure(invoke(*args, url=url), 1, "session 'missing' not found")


def test_show_prints_the_whole_graph(url: str) -> None:
    """`show` is the one view of a session's children; stored [brackets] must not vanish as Rich markup."""
    with Storage(url) as storage:
        storage.sessions.save_session(reference_session("session-789"))
        expected = storage.sessions.load_session("session-789")
    assert expected is not None

    result = invoke("show", "session-789", url=url)
    assert result.exit_code == 0, result.output
    for text in (
        "session session-789",
        "make the sky more dramatic",
        "dramatic sky with [storm] clouds",
        "sky_0",
        "#87CEEB",
        "Great improvement to the sky!",
        "Perfect!",
        "accept",
    ):
        assert text in result.stdout

    assert parsed(invoke("show", "session-789", "--json", url=url)) == expected.model_dump(mode="json")


def test_stats_json_is_the_service_statistics(url: str) -> None:
    """`stats --json` must be exactly get_statistics(), so that scripts can rely on its keys."""
    with Storage(url) as storage:
        storage.sessions.batch_save_sessions(SessionCreateFactory.build_batch(8))
        expected = storage.sessions.get_statistics()

    assert parsed(invoke("stats", "--json", url=url)) == expected.model_dump(mode="json")
    table = invoke("stats", url=url)
    assert table.exit_code == 0, table.output
    assert "success rate" in table.stdout


# -- import, export --------------------------------------------------------------------------------
def comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A graph without the timestamps the database assigns, feedback given the one way export gives it."""
    data = json.loads(json.dumps(data))
    if (feedback := data.pop("user_feedback", None)) is not None:
        data["feedback"] = [feedback]
    data.pop("created_at", None)
    for key in ("prompts", "validations", "feedback"):
        for child in data.get(key, []):
            child.pop("created_at", None)
    return SessionCreate.model_validate(data).model_dump()


def test_import_then_export_round_trips(tmp_path: Path, url: str) -> None:
    """Export must write what import reads, so that moving a session between databases loses nothing."""
    original = [reference_session("session-789"), reference_session("session-790", status="failed")]
    source = write_json(tmp_path / "sessions.json", original)

    imported = invoke("import", str(source), url=url)
    assert imported.exit_code == 0, imported.output
    assert "imported 2 sessions" in imported.stdout
    assert session_count(url) == 2

    exported = parsed(invoke("export", "session-789", url=url))
    assert comparable(exported) == comparable(original[0])

    out = tmp_path / "one.json"
    to_file = invoke("export", "session-789", "--out", str(out), url=url)
    assert to_file.exit_code == 0, to_file.output
    assert to_file.stdout == ""
    assert json.loads(out.read_text(encoding="utf-8")) == exported

    other = f"sqlite:///{tmp_path}/other.db"
    assert invoke("upgrade", url=other).exit_code == 0
    assert invoke("import", str(out), url=other).exit_code == 0
    assert parsed(invoke("export", "session-789", url=other)) == exported
    with Storage(url) as first, Storage(other) as second:
        a, b = first.sessions.load_session("session-789"), second.sessions.load_session("session-789")
    assert a is not None
    assert b is not None
    assert a.as_create().model_dump() == b.as_create().model_dump()


def test_import_of_an_invalid_file_names_the_field_and_writes_nothing(tmp_path: Path, url: str) -> None:
    """One bad item anywhere must stop the whole import before any batch is written, naming where it is."""
    assert (
        invoke(
            "import", str(write_json(tmp_path / "good.json", reference_session("kept"))), url=url
        ).exit_code
        == 0
    )
    bad_entity = {**reference_session("s2")["entities"][0], "confidence": 1.5}
    bad = write_json(
        tmp_path / "bad.json", [reference_session("s1"), reference_session("s2", entities=[bad_entity])]
    )

    result = invoke("import", str(bad), url=url)

    assert_clean_failure(result, 1, "bad.json[1].entities.0.confidence", "nothing imported")
    assert session_count(url) == 1


def test_import_of_a_file_that_is_not_json_is_a_clean_error(tmp_path: Path, url: str) -> None:
    """A truncated or wrong file must be named in the message, not surface as a JSONDecodeError."""
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "s1",', encoding="utf-8")

    assert_clean_failure(invoke("import", str(broken), url=url), 1, "broken.json", "is not a JSON file")


# -- schema ----------------------------------------------------------------------------------------
def test_upgrade_and_current_on_a_fresh_file(url: str) -> None:
    """On a new file both commands must work and report the newest revision."""
    head = head_revision()

    upgraded = invoke("upgrade", url=url)
    assert upgraded.exit_code == 0, upgraded.output
    assert head in upgraded.stdout

    assert parsed(invoke("current", "--json", url=url)) == {
        "state": "current",
        "revision": head,
        "head": head,
        "differences": [],
    }
    shown = invoke("current", url=url)
    assert shown.exit_code == 0, shown.output
    assert "current" in shown.stdout
    assert head in shown.stdout


def test_a_database_behind_the_code_names_the_upgrade_command(tmp_path: Path) -> None:
    """An old database must be refused with the fix spelled out, and `upgrade` must then be that fix."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    config = alembic_config(url)
    config.attributes["edi_storage.upgrade"] = True
    command.upgrade(config, "0001_base_schema")

    assert_clean_failure(invoke("history", url=url), 2, "edi-storage upgrade", "0001_base_schema")
    status = parsed(invoke("current", "--json", url=url))
    assert (status["state"], status["revision"]) == ("behind", "0001_base_schema")

    upgraded = invoke("upgrade", url=url)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"0001_base_schema -> {head_revision()}" in upgraded.stdout
    assert list(tmp_path.glob("old.db.*.bak")), "upgrade must back the file up by default"
    assert parsed(invoke("history", "--json", url=url)) == []


def test_audit_shows_who_changed_what(url: str, tmp_path: Path) -> None:
    """`audit` lists the trail with the actor an import was given, and filters it."""
    path = write_json(tmp_path / "one.json", reference_session("audited"))
    assert invoke("import", str(path), "--actor", "importer", url=url).exit_code == 0
    entries = parsed(invoke("audit", "--table", "sessions", "--json", url=url))
    assert [(e["record_id"], e["operation"], e["user_id"]) for e in entries] == [
        ("audited", "INSERT", "importer")
    ]
    assert "importer" in invoke("audit", url=url).stdout


def test_import_without_audit_records_nothing(url: str, tmp_path: Path) -> None:
    """`import --no-audit` is the explicit way to load data without an audit trail."""
    path = write_json(tmp_path / "one.json", [reference_session("a"), reference_session("b")])
    assert invoke("import", str(path), "--no-audit", url=url).exit_code == 0
    assert parsed(invoke("audit", "--json", url=url)) == []
    assert session_count(url) == 2


def test_state_show_and_sync(url: str, tmp_path: Path) -> None:
    """State files are shown, and synced into the database without duplicates on a second sync."""
    from tests.state.test_state import REFERENCE_STATE

    first = write_json(tmp_path / "a.json", REFERENCE_STATE)
    second = write_json(
        tmp_path / "b.json", {**REFERENCE_STATE, "session_id": "other", "current_stage": "completed"}
    )
    shown = invoke("state", "show", str(first), url=url)
    assert shown.exit_code == 0 and "session-json-123" in shown.stdout and "refinement" in shown.stdout
    assert parsed(invoke("state", "show", str(first), "--json", url=url))["state_version"] == 1
    for _ in range(2):
        result = invoke("state", "sync", str(first), str(second), url=url)
        assert result.exit_code == 0, result.output
    assert session_count(url) == 2


def test_state_sync_of_a_corrupt_file_writes_nothing(url: str, tmp_path: Path) -> None:
    """One corrupt file: an error naming it, and no session written from the good one either."""
    from tests.state.test_state import REFERENCE_STATE

    good = write_json(tmp_path / "good.json", REFERENCE_STATE)
    bad = tmp_path / "bad.json"
    bad.write_text('{"session_id": ')
    result = invoke("state", "sync", str(good), str(bad), url=url)
    assert result.exit_code == 1
    assert "bad.json" in result.stderr and "not valid JSON" in result.stderr
    assert session_count(url) == 0


def test_perf_reports_what_was_recorded(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`perf` shows nothing until recording is switched on, then a row per query type."""
    assert "opt-in" in invoke("perf", url=url).stdout
    monkeypatch.setenv("EDI_STORAGE_RECORD_QUERY_PERFORMANCE", "1")
    assert invoke("history", url=url).exit_code == 0
    metrics = parsed(invoke("perf", "--json", url=url))
    assert [m["query_type"] for m in metrics] == ["sessions.query_history"]
    assert "sessions.query_history" in invoke("perf", url=url).stdout


def test_library_commands_end_to_end(url: str, tmp_path: Path) -> None:
    """add (with an image), search, popular, recent, show, thumbnail, stats and cleanup from the shell."""
    from PIL import Image

    image = tmp_path / "made.png"
    Image.new("RGB", (640, 480), (1, 2, 3)).save(image)
    assert (
        invoke(
            "library", "add", "A sunset over mountains", "--model", "sdxl", "--image", str(image), url=url
        ).exit_code
        == 0
    )
    assert "2 uses" in invoke("library", "add", "a  SUNSET over mountains", url=url).stdout
    broken = invoke("library", "add", "city at night", "--image", str(tmp_path / "missing.png"), url=url)
    assert broken.exit_code == 0 and "no thumbnail" in broken.stderr
    [found] = parsed(invoke("library", "search", "sunset", "--json", url=url))
    assert (found["total_uses"], found["thumbnail_width"]) == (2, 256)
    popular = parsed(invoke("library", "popular", "--json", url=url))
    assert popular[0]["prompt_text"] == "A sunset over mountains"
    assert len(parsed(invoke("library", "recent", "--json", url=url))) == 2
    assert "A sunset over mountains" in invoke("library", "show", str(found["id"]), url=url).stdout
    out = tmp_path / "thumb.webp"
    assert invoke("library", "thumbnail", str(found["id"]), "--out", str(out), url=url).exit_code == 0
    assert out.read_bytes()[8:12] == b"WEBP"
    assert parsed(invoke("library", "stats", "--json", url=url))["total_uses"] == 3
    refused = invoke("library", "cleanup", url=url)
    assert refused.exit_code == 2 and "refusing" in refused.stderr
    assert "deleted 1 prompts" in invoke("library", "cleanup", "--without-thumbnail", url=url).stdout
    missing = invoke("library", "show", "999", url=url)
    assert missing.exit_code == 1 and "999" in missing.stderr


def test_gallery_commands_end_to_end(url: str) -> None:
    """add, curate, feature, top, uncurated, quality, training and daily from the shell."""
    for name, score in [("a.png", 9.0), ("b.png", 6.5), ("c.png", 2.0)]:
        result = invoke(
            "gallery", "add", name, "--prompt", "a sunset", "--model", "sdxl", "--score", str(score), url=url
        )
        assert result.exit_code == 0, result.output
    taken = invoke("gallery", "add", "a.png", "--prompt", "x", "--model", "m", url=url)
    assert taken.exit_code == 1 and "already in the gallery" in taken.stderr
    assert [i["filename"] for i in parsed(invoke("gallery", "uncurated", "--json", url=url))] == [
        "a.png",
        "b.png",
        "c.png",
    ]
    for image_id in ("1", "2", "3"):
        assert invoke("gallery", "curate", image_id, "curated", url=url).exit_code == 0
    assert "is featured" in invoke("gallery", "feature", "1", url=url).stdout
    assert [i["filename"] for i in parsed(invoke("gallery", "top", "--json", url=url))] == [
        "a.png",
        "b.png",
        "c.png",
    ]
    assert [
        i["filename"] for i in parsed(invoke("gallery", "top", "--min-score", "7", "--json", url=url))
    ] == ["a.png"]
    tiers = {t["quality_tier"]: t["count"] for t in parsed(invoke("gallery", "quality", "--json", url=url))}
    assert tiers == {"Excellent": 1, "Good": 1, "Poor": 1}
    assert parsed(invoke("gallery", "training", "--json", url=url)) == []
    assert parsed(invoke("gallery", "daily", "--json", url=url)) == []
    assert invoke("gallery", "curate", "1", "approved", url=url).exit_code == 2


def test_operations_commands(url: str, tmp_path: Path) -> None:
    """backup --rotate, restore --to, check (exit code a cron job can act on), size, vacuum, analyze."""
    assert invoke("demo", "--sessions", "10", url=url).exit_code == 0
    made = parsed(
        invoke(
            "backup", "--dir", str(tmp_path / "b"), "--compress", "--rotate", "--dry-run", "--json", url=url
        )
    )
    assert made["backup"]["path"].endswith(".db.gz") and made["rotation"]["dry_run"] is True
    restored = tmp_path / "restored.db"
    result = invoke("restore", made["backup"]["path"], "--to", str(restored), url=url)
    assert result.exit_code == 0, result.output
    assert invoke("restore", made["backup"]["path"], "--to", str(restored), url=url).exit_code == 1
    assert parsed(invoke("check", "--json", url=f"sqlite:///{restored}"))["ok"] is True
    assert "healthy" in invoke("check", url=url).stdout
    sizes = {t["name"]: t["rows"] for t in parsed(invoke("size", "--json", url=url))["tables"]}
    assert sizes["sessions"] == 10
    for command_name in ("vacuum", "analyze", "checkpoint"):
        assert invoke(command_name, url=url).exit_code == 0
    with sqlite3.connect(restored) as conn:
        conn.execute("DROP INDEX ix_sessions_created_at_id")
    drifted = invoke("check", url=f"sqlite:///{restored}")
    assert drifted.exit_code == 1 and "NOT healthy" in drifted.stdout


def test_export_all_then_import_elsewhere(url: str, tmp_path: Path) -> None:
    """`export --all out.jsonl` on one database, `import out.jsonl` on another: the same records."""
    assert invoke("demo", "--sessions", "12", url=url).exit_code == 0
    dump = tmp_path / "out.jsonl"
    assert invoke("export", "--all", "--out", str(dump), url=url).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert invoke("upgrade", url=other).exit_code == 0
    result = invoke("import", str(dump), url=other)
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.jsonl"
    invoke("export", "--all", "--out", str(again), url=other)
    assert sorted(dump.read_text().splitlines()) == sorted(again.read_text().splitlines())
    assert_usage_error(invoke("export", url=url), "[ID]", "give a session id or --all")


def test_export_never_overwrites_a_file_unless_forced(url: str, tmp_path: Path) -> None:
    with Storage(url) as storage:
        storage.sessions.save_session(reference_session("kept"))
    out = tmp_path / "mine.json"
    out.write_text("the user's own file\n")
    assert_usage_error(invoke("export", "kept", "--out", str(out), url=url), "'--out'", "--force", str(out))
    assert out.read_text() == "the user's own file\n"
    assert invoke("export", "kept", "--out", str(out), "--force", url=url).exit_code == 0
    assert json.loads(out.read_text())["id"] == "kept"


def test_import_dash_reads_an_export_or_a_session_from_standard_input(url: str, tmp_path: Path) -> None:
    assert invoke("demo", "--sessions", "5", url=url).exit_code == 0
    everything = invoke("export", "--all", url=url).stdout
    with Storage(url) as storage:
        one = storage.sessions.query_history(limit=1)[0].id
    single = invoke("export", one, url=url).stdout
    for text, sessions in ((everything, 5), (single, 1)):
        other = f"sqlite:///{tmp_path / f'from-stdin-{sessions}.db'}"
        assert invoke("upgrade", url=other).exit_code == 0
        result = runner.invoke(app, ["--url", other, "import", "-"], input=text, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert session_count(other) == sessions
    assert_usage_error(invoke("import", str(tmp_path / "absent.json"), url=url), "'FILE'", "absent.json")


def test_a_failed_forced_export_leaves_the_existing_file_whole(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edi_storage.ops import transfer

    out = tmp_path / "kept.jsonl"
    out.write_text("the user's own file\n")

    def fails_half_way(storage: Storage, handle: Any, progress: Any = None) -> dict[str, int]:
        handle.write('{"kind": "session"}\n')
        raise OSError("disk full")

    monkeypatch.setattr(transfer, "export_all", fails_half_way)
    result = invoke("export", "--all", "--out", str(out), "--force", url=url)
    assert result.exit_code == 1 and "disk full" in result.stderr
    assert out.read_text() == "the user's own file\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".kept.jsonl.")]  # no temp left


def test_standard_input_is_named_as_such_in_messages(url: str) -> None:
    result = runner.invoke(app, ["--url", url, "import", "-"], input="not json\n", env={"COLUMNS": "200"})
    assert (
        result.exit_code == 1
        and "standard input" in result.stderr
        and "edi-storage-import-" not in result.stderr
    )


def test_a_bad_url_or_history_file_is_a_usage_error_naming_the_flag(url: str, tmp_path: Path) -> None:
    assert_usage_error(invoke("stats", url="notaurl"), "'--url'", "is not a database URL", "'notaurl'")
    garbage = tmp_path / "h.json"
    garbage.write_text("garbage")
    assert_usage_error(invoke("health", "--history", str(garbage), url=url), "'--history'", "health history")


def test_long_reports_print_counts_first_and_list_at_most_the_limit(url: str) -> None:
    """976 ids, 145 files or 52 tables must not scroll the summary away: --limit, --all, --json."""
    assert invoke("demo", "--sessions", "30", url=url).exit_code == 0
    nothing = invoke("prune", "--older-than-days", "100000", "--dry-run", url=url)
    assert nothing.stdout.strip() == "nothing to prune: no session matches"
    dry = invoke("prune", "--older-than-days", "0", "--dry-run", "--limit", "3", url=url)
    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert lines[0] == "would archive and delete 30 sessions, oldest first:"
    assert len(lines) == 5 and "and 27 more (--all lists every one)" in lines[-1]
    every = invoke("prune", "--older-than-days", "0", "--dry-run", "--all", url=url).stdout
    assert len(every.splitlines()) == 31
    health = invoke("health", "--limit", "4", url=url).stdout
    assert "the 4 largest" in health and "more (--all lists every one)" in health
    assert " kB" in health  # sizes people read; --json keeps the bytes
    assert isinstance(parsed(invoke("size", "--json", url=url))["database_bytes"], int)


def test_an_empty_result_says_none(url: str) -> None:
    result = invoke("audit", "--operation", "DELETE", url=url)
    assert result.exit_code == 0 and "none" in result.stdout and "operation" not in result.stdout
    assert "none" in invoke("library", "popular", url=url).stdout


def test_vacuum_reports_what_it_freed(url: str) -> None:
    assert invoke("demo", "--sessions", "40", url=url).exit_code == 0
    archive = Path(url.removeprefix("sqlite:///")).with_name("archive.jsonl")
    assert invoke("prune", "--older-than-days", "0", "--archive", str(archive), url=url).exit_code == 0
    report = parsed(invoke("vacuum", "--json", url=url))
    assert report["bytes_before"] > report["bytes_after"] > 0
    assert report["freed_bytes"] == report["bytes_before"] - report["bytes_after"]
    assert "freed" in invoke("vacuum", url=url).stdout


def test_version_and_short_help() -> None:
    from edi_storage import __version__

    assert invoke("--version").stdout.strip() == f"edi-storage {__version__}"
    assert "Usage" in invoke("-h").stdout and "Usage" in invoke("history", "-h").stdout


def test_prune_health_and_files_commands(url: str, tmp_path: Path) -> None:
    """prune --dry-run lists, prune archives and deletes; health; files reports and deletes by token."""
    assert invoke("demo", "--sessions", "30", url=url).exit_code == 0
    dry = parsed(invoke("prune", "--older-than-days", "15", "--dry-run", "--json", url=url))
    assert dry["dry_run"] is True and dry["sessions"] == len(dry["session_ids"]) > 0
    archive = tmp_path / "old.jsonl"
    done = invoke("prune", "--older-than-days", "15", "--archive", str(archive), "--vacuum", url=url)
    assert done.exit_code == 0, done.output
    assert session_count(url) == 30 - dry["sessions"] and archive.exists()
    history = tmp_path / "health.json"
    assert "audit_log" in invoke("health", "--history", str(history), url=url).stdout
    assert parsed(invoke("health", "--history", str(history), "--json", url=url))["previous_at"] is not None
    folder = tmp_path / "managed"
    folder.mkdir()
    (folder / "stray.png").write_bytes(b"x")
    report = parsed(invoke("files", "--dir", str(folder), "--json", url=url))
    assert report["orphans"] == [str(folder / "stray.png")]
    assert sum(1 for table, _, _ in report["missing"] if table == "sessions") == session_count(url)
    assert invoke("files", "--dir", str(folder), "--delete-orphans", "wrong", url=url).exit_code == 1
    assert (folder / "stray.png").exists()
    assert invoke("files", "--dir", str(folder), "--delete-orphans", report["token"], url=url).exit_code == 0
    assert not (folder / "stray.png").exists()


def test_import_refuses_one_id_in_two_files_naming_both(url: str, tmp_path: Path) -> None:
    """Two files holding the same session id: which to keep is ambiguous, so nothing is imported."""
    first = write_json(tmp_path / "first.json", reference_session("same"))
    second = write_json(tmp_path / "second.json", reference_session("same", status="failed"))
    result = invoke("import", str(first), str(second), url=url)
    assert result.exit_code == 1
    assert "second.json[0].id" in result.stderr and "first.json[0]" in result.stderr
    assert session_count(url) == 0


def test_current_does_not_create_a_database_and_upgrade_says_it_did(tmp_path: Path) -> None:
    """Looking must not create; creating must say so."""
    url = f"sqlite:///{tmp_path}/x.db"
    result = invoke("current", url=url)
    assert result.exit_code == 2 and "no database" in result.stderr
    assert not (tmp_path / "x.db").exists()
    assert "created" in invoke("upgrade", url=url).stdout
