"""Operations over a whole database, not a unit of work: backups and restore, integrity and size
checks, vacuum, retention, export and import, and the files beside the database.

Each is a function or small class over a ``Storage``. Some of them cannot run inside a transaction at
all (``VACUUM``, SQLite's checkpoint) or read the database as a whole (``PRAGMA integrity_check``,
``dbstat``, ``pg_total_relation_size``), so none of them is offered inside ``storage.unit_of_work()``.
"""
