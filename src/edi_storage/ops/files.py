"""Files against the database: files rows point to that are missing, and files in managed folders that
no row points to.

Report-only by default. Deleting orphans needs the token of a report (a digest of exactly the files it
listed): so a deletion always follows a dry run, and deletes nothing if the folders or the rows changed
since, which is how careless orphan cleaners lose valid files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from edi_storage.errors import Conflict
from edi_storage.models import EditSession, Entity, GeneratedImage
from edi_storage.state import StateStore, load_state_file
from edi_storage.storage import Storage


@dataclass
class FilesReport:
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # (table, row id, path)
    orphans: list[Path] = field(default_factory=list)
    unsynced_states: list[Path] = field(default_factory=list)  # state files of sessions not stored
    token: str = ""


def referenced_files(storage: Storage, gallery_dir: Path | None) -> list[tuple[str, str, Path]]:
    with storage.unit_of_work(readonly=True) as uow:
        s = uow.session
        rows: list[tuple[str, str, Path]] = [
            ("sessions", sid, Path(p)) for sid, p in s.execute(select(EditSession.id, EditSession.image_path))
        ]
        masks = s.execute(select(Entity.id, Entity.mask_path).where(Entity.mask_path.is_not(None)))
        rows += [("entities", str(eid), Path(p)) for eid, p in masks if p is not None]
        if gallery_dir is not None:
            rows += [
                ("generated_images", str(iid), gallery_dir / name)
                for iid, name in s.execute(select(GeneratedImage.id, GeneratedImage.filename))
            ]
    return rows


def check_files(
    storage: Storage, managed: list[Path], gallery_dir: Path | None = None, state_dir: Path | None = None
) -> FilesReport:
    """Missing referenced files, orphans in ``managed``, and state files whose session is not stored.

    A state file is never an orphan: its session may simply not have been synced yet, so it is reported
    (``edi-storage state sync`` stores it) and never offered for deletion.
    """
    referenced = referenced_files(storage, gallery_dir)
    wanted = {p.resolve() for _, _, p in referenced}
    report = FilesReport(missing=[(t, i, str(p)) for t, i, p in referenced if not p.exists()])
    if state_dir is not None:
        store = StateStore(state_dir)
        stored = set(storage.sessions.session_ids(limit=10**9))
        for path in store.paths():
            wanted.add(path.resolve())
            if load_state_file(path).session_id not in stored:
                report.unsynced_states.append(path)
    for folder in managed:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.resolve() not in wanted:
                report.orphans.append(path)
    report.token = _token(report.orphans)
    return report


def delete_orphans(
    storage: Storage,
    managed: list[Path],
    token: str,
    gallery_dir: Path | None = None,
    state_dir: Path | None = None,
) -> list[Path]:
    """Delete the orphans of the report whose token is given, if the same check still finds exactly them."""
    now = check_files(storage, managed, gallery_dir, state_dir)
    if now.token != token:
        raise Conflict("the orphans are not those of the report the token came from; run the check again")
    for path in now.orphans:
        path.unlink()
    return now.orphans


def _token(paths: list[Path]) -> str:
    return hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
