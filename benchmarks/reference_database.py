"""The reference ``Database`` class of storage-database.md, as written there, so that every benchmark
run shows edi-storage against what a user would otherwise pick.

Copied verbatim: ``__init__``, ``_initialize_tables``, ``_get_connection`` (a new connection per call,
default journal mode and synchronous setting), ``save_session``, ``load_session``, ``query_history`` and
``get_statistics``. Nothing in them crashed, so nothing was fixed; only type annotations were completed
for mypy --strict (``_get_connection`` was annotated as returning a connection, it yields one; one
list's element type) and the formatter applied. The other methods are left out (nothing calls them
here). The file is exempt from lint (``ruff: noqa``) so that it can stay as it was written.

``load_base`` is not part of the reference: it fills a reference database with the benchmark's base
data quickly (one executemany per table), writing exactly the columns ``save_session`` writes.
"""
# ruff: noqa

import sqlite3
import json
import uuid
from datetime import datetime
from typing import Dict, Any, List, Optional, Union, Iterator
from contextlib import contextmanager
import logging
from enum import Enum


class DatabaseError(Exception):
    """Custom exception for database errors."""

    pass


class TransactionStatus(Enum):
    """Enumeration for transaction statuses."""

    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"


class Database:
    """
    SQLite wrapper that provides methods for saving and loading sessions with transaction support.
    """

    def __init__(self, db_path: str = "edi_sessions.db") -> None:
        self.db_path = db_path
        self.logger = logging.getLogger(__name__)
        self._initialize_tables()

    def _initialize_tables(self) -> None:
        """
        Initialize tables on first run.
        """
        try:
            with self._get_connection() as conn:
                cursor = conn.cursor()

                # Create sessions table
                cursor.execute("""
                    CREATE TABLE IF NOT EXISTS sessions (
                        id TEXT PRIMARY KEY,
                        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                        image_path TEXT NOT NULL,
                        naive_prompt TEXT NOT NULL,
                        status TEXT CHECK(status IN ('in_progress', 'completed', 'failed')),
                        final_alignment_score REAL,
                        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
                    )
                """)

                # Create prompts table
                cursor.execute("""
                    CREATE TABLE IF NOT EXISTS prompts (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        session_id TEXT REFERENCES sessions(id),
                        iteration INT,
                        positive_prompt TEXT,
                        negative_prompt TEXT,
                        quality_score REAL,
                        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
                    )
                """)

                # Create entities table
                cursor.execute("""
                    CREATE TABLE IF NOT EXISTS entities (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        session_id TEXT REFERENCES sessions(id),
                        entity_id TEXT,
                        label TEXT,
                        confidence REAL,
                        bbox_json TEXT,
                        mask_path TEXT,
                        color_hex TEXT,
                        area_percent REAL
                    )
                """)

                # Create validations table
                cursor.execute("""
                    CREATE TABLE IF NOT EXISTS validations (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        session_id TEXT REFERENCES sessions(id),
                        attempt_number INT,
                        alignment_score REAL,
                        preserved_count INT,
                        modified_count INT,
                        unintended_count INT,
                        user_feedback TEXT,
                        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
                    )
                """)

                # Create user feedback table
                cursor.execute("""
                    CREATE TABLE IF NOT EXISTS user_feedback (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        session_id TEXT REFERENCES sessions(id),
                        feedback_type TEXT CHECK(feedback_type IN ('accept', 'reject', 'partial')),
                        comments TEXT,
                        rating INT CHECK(rating BETWEEN 1 AND 5),
                        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
                    )
                """)

                # Create indexes for performance
                cursor.execute("""
                    CREATE INDEX IF NOT EXISTS idx_sessions_status 
                    ON sessions(status)
                """)

                cursor.execute("""
                    CREATE INDEX IF NOT EXISTS idx_sessions_created 
                    ON sessions(created_at DESC)
                """)

                cursor.execute("""
                    CREATE INDEX IF NOT EXISTS idx_prompts_session 
                    ON prompts(session_id)
                """)

                cursor.execute("""
                    CREATE INDEX IF NOT EXISTS idx_entities_session 
                    ON entities(session_id)
                """)

                conn.commit()

        except sqlite3.Error as e:
            raise DatabaseError(f"Failed to initialize database tables: {str(e)}")

    @contextmanager
    def _get_connection(self) -> Iterator[sqlite3.Connection]:
        """
        Get database connection with proper error handling.
        Provides transaction support for data integrity.
        """
        conn = None
        try:
            # Create connection with appropriate settings
            conn = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False)

            # Enable row factory for easier column access
            conn.row_factory = sqlite3.Row

            # Enable foreign key constraints
            conn.execute("PRAGMA foreign_keys = ON")

            yield conn

        except sqlite3.Error as e:
            # Handle database errors gracefully
            if conn:
                try:
                    conn.rollback()
                except:
                    pass
            raise DatabaseError(f"Database connection error: {str(e)}")

        finally:
            # Ensure connection is properly closed
            if conn:
                try:
                    conn.commit()
                except:
                    pass
                conn.close()

    def save_session(self, session_data: Dict[str, Any]) -> bool:
        """
        Saves a session to the database.

        Args:
            session_data: Dictionary containing session information to save

        Returns:
            Boolean indicating success (True) or failure (False)
        """
        try:
            with self._get_connection() as conn:
                cursor = conn.cursor()

                # Begin transaction for data integrity
                conn.execute("BEGIN")

                # Extract session data
                session_id = session_data.get("id", str(uuid.uuid4()))
                image_path = session_data.get("image_path", "")
                naive_prompt = session_data.get("naive_prompt", "")
                status = session_data.get("status", "in_progress")
                final_alignment_score = session_data.get("final_alignment_score")

                # Save main session record
                cursor.execute(
                    """
                    INSERT OR REPLACE INTO sessions 
                    (id, image_path, naive_prompt, status, final_alignment_score, updated_at)
                    VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP)
                """,
                    (session_id, image_path, naive_prompt, status, final_alignment_score),
                )

                # Save prompts
                prompts = session_data.get("prompts", [])
                for prompt in prompts:
                    cursor.execute(
                        """
                        INSERT INTO prompts 
                        (session_id, iteration, positive_prompt, negative_prompt, quality_score)
                        VALUES (?, ?, ?, ?, ?)
                    """,
                        (
                            session_id,
                            prompt.get("iteration", 0),
                            prompt.get("positive_prompt", ""),
                            prompt.get("negative_prompt", ""),
                            prompt.get("quality_score"),
                        ),
                    )

                # Save entities
                entities = session_data.get("entities", [])
                for entity in entities:
                    # Serialize bbox to JSON
                    bbox_json = json.dumps(entity.get("bbox", {}))

                    cursor.execute(
                        """
                        INSERT INTO entities 
                        (session_id, entity_id, label, confidence, bbox_json, mask_path, color_hex, area_percent)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                        (
                            session_id,
                            entity.get("entity_id", ""),
                            entity.get("label", ""),
                            entity.get("confidence", 0.0),
                            bbox_json,
                            entity.get("mask_path"),
                            entity.get("color_hex"),
                            entity.get("area_percent"),
                        ),
                    )

                # Save validations
                validations = session_data.get("validations", [])
                for validation in validations:
                    cursor.execute(
                        """
                        INSERT INTO validations 
                        (session_id, attempt_number, alignment_score, preserved_count, modified_count, unintended_count, user_feedback)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                        (
                            session_id,
                            validation.get("attempt_number", 0),
                            validation.get("alignment_score", 0.0),
                            validation.get("preserved_count", 0),
                            validation.get("modified_count", 0),
                            validation.get("unintended_count", 0),
                            validation.get("user_feedback"),
                        ),
                    )

                # Save user feedback
                user_feedback = session_data.get("user_feedback")
                if user_feedback:
                    cursor.execute(
                        """
                        INSERT INTO user_feedback 
                        (session_id, feedback_type, comments, rating)
                        VALUES (?, ?, ?, ?)
                    """,
                        (
                            session_id,
                            user_feedback.get("feedback_type", "partial"),
                            user_feedback.get("comments"),
                            user_feedback.get("rating"),
                        ),
                    )

                # Commit transaction to finalize the save
                conn.execute("COMMIT")

                self.logger.info(f"Session {session_id} saved successfully")
                return True

        except sqlite3.Error as e:
            # Handle database errors gracefully
            self.logger.error(f"Failed to save session: {str(e)}")
            return False
        except Exception as e:
            # Handle unexpected errors
            self.logger.error(f"Unexpected error saving session: {str(e)}")
            return False

    def load_session(self, session_id: str) -> Optional[Dict[str, Any]]:
        """
        Loads a session from the database.

        Args:
            session_id: ID of the session to load

        Returns:
            Dictionary containing session data, or None if not found
        """
        try:
            with self._get_connection() as conn:
                cursor = conn.cursor()

                # Load main session record
                cursor.execute(
                    """
                    SELECT id, created_at, image_path, naive_prompt, status, final_alignment_score
                    FROM sessions
                    WHERE id = ?
                """,
                    (session_id,),
                )

                session_row = cursor.fetchone()
                if not session_row:
                    return None

                # Build session data
                session_data = {
                    "id": session_row[0],
                    "created_at": session_row[1],
                    "image_path": session_row[2],
                    "naive_prompt": session_row[3],
                    "status": session_row[4],
                    "final_alignment_score": session_row[5],
                }

                # Load prompts
                cursor.execute(
                    """
                    SELECT iteration, positive_prompt, negative_prompt, quality_score, created_at
                    FROM prompts
                    WHERE session_id = ?
                    ORDER BY iteration
                """,
                    (session_id,),
                )

                prompt_rows = cursor.fetchall()
                session_data["prompts"] = [
                    {
                        "iteration": row[0],
                        "positive_prompt": row[1],
                        "negative_prompt": row[2],
                        "quality_score": row[3],
                        "created_at": row[4],
                    }
                    for row in prompt_rows
                ]

                # Load entities
                cursor.execute(
                    """
                    SELECT entity_id, label, confidence, bbox_json, mask_path, color_hex, area_percent
                    FROM entities
                    WHERE session_id = ?
                """,
                    (session_id,),
                )

                entity_rows = cursor.fetchall()
                session_data["entities"] = []

                for row in entity_rows:
                    try:
                        bbox = json.loads(row[3]) if row[3] else {}
                    except json.JSONDecodeError:
                        bbox = {}

                    session_data["entities"].append(
                        {
                            "entity_id": row[0],
                            "label": row[1],
                            "confidence": row[2],
                            "bbox": bbox,
                            "mask_path": row[4],
                            "color_hex": row[5],
                            "area_percent": row[6],
                        }
                    )

                # Load validations
                cursor.execute(
                    """
                    SELECT attempt_number, alignment_score, preserved_count, modified_count, unintended_count, user_feedback, created_at
                    FROM validations
                    WHERE session_id = ?
                    ORDER BY attempt_number
                """,
                    (session_id,),
                )

                validation_rows = cursor.fetchall()
                session_data["validations"] = [
                    {
                        "attempt_number": row[0],
                        "alignment_score": row[1],
                        "preserved_count": row[2],
                        "modified_count": row[3],
                        "unintended_count": row[4],
                        "user_feedback": row[5],
                        "created_at": row[6],
                    }
                    for row in validation_rows
                ]

                # Load user feedback
                cursor.execute(
                    """
                    SELECT feedback_type, comments, rating, created_at
                    FROM user_feedback
                    WHERE session_id = ?
                    ORDER BY created_at DESC
                    LIMIT 1
                """,
                    (session_id,),
                )

                feedback_row = cursor.fetchone()
                if feedback_row:
                    session_data["user_feedback"] = {
                        "feedback_type": feedback_row[0],
                        "comments": feedback_row[1],
                        "rating": feedback_row[2],
                        "created_at": feedback_row[3],
                    }

                return session_data

        except sqlite3.Error as e:
            # Handle database errors gracefully
            self.logger.error(f"Failed to load session {session_id}: {str(e)}")
            return None
        except Exception as e:
            # Handle unexpected errors
            self.logger.error(f"Unexpected error loading session {session_id}: {str(e)}")
            return None

    def query_history(
        self,
        limit: int = 50,
        offset: int = 0,
        status_filter: Optional[str] = None,
        search_term: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """
        Queries session history from the database.

        Args:
            limit: Maximum number of results to return
            offset: Number of results to skip (for pagination)
            status_filter: Filter by session status
            search_term: Search term to match in image path or prompt

        Returns:
            List of session summary dictionaries
        """
        try:
            with self._get_connection() as conn:
                cursor = conn.cursor()

                # Build query with dynamic WHERE clause
                base_query = """
                    SELECT id, created_at, image_path, naive_prompt, status, final_alignment_score
                    FROM sessions
                """

                where_conditions = []
                query_params: List[Any] = []

                # Apply status filter
                if status_filter:
                    where_conditions.append("status = ?")
                    query_params.append(status_filter)

                # Apply search term filter
                if search_term:
                    search_conditions = ["image_path LIKE ?", "naive_prompt LIKE ?"]
                    search_params = [f"%{search_term}%", f"%{search_term}%"]
                    where_conditions.append(f"({' OR '.join(search_conditions)})")
                    query_params.extend(search_params)

                # Construct WHERE clause
                if where_conditions:
                    base_query += " WHERE " + " AND ".join(where_conditions)

                # Add ordering and pagination
                base_query += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
                query_params.extend([limit, offset])

                # Execute query
                cursor.execute(base_query, query_params)
                rows = cursor.fetchall()

                # Process results
                session_histories = []
                for row in rows:
                    session_histories.append(
                        {
                            "id": row[0],
                            "created_at": row[1],
                            "image_path": row[2],
                            "naive_prompt": row[3][:100] + "..." if len(row[3]) > 100 else row[3],
                            "status": row[4],
                            "final_alignment_score": row[5],
                        }
                    )

                return session_histories

        except sqlite3.Error as e:
            # Handle database errors gracefully
            self.logger.error(f"Failed to query session history: {str(e)}")
            return []
        except Exception as e:
            # Handle unexpected errors
            self.logger.error(f"Unexpected error querying session history: {str(e)}")
            return []

    def get_statistics(self) -> Dict[str, Any]:
        """
        Gets database statistics.

        Returns:
            Dictionary with statistics
        """
        try:
            with self._get_connection() as conn:
                cursor = conn.cursor()

                # Get total sessions by status
                cursor.execute("""
                    SELECT status, COUNT(*) 
                    FROM sessions 
                    GROUP BY status
                """)
                status_counts = dict(cursor.fetchall())

                # Get average alignment score for completed sessions
                cursor.execute("""
                    SELECT AVG(final_alignment_score) 
                    FROM sessions 
                    WHERE status = 'completed' AND final_alignment_score IS NOT NULL
                """)
                avg_score = cursor.fetchone()[0]

                # Get total session count
                cursor.execute("SELECT COUNT(*) FROM sessions")
                total_sessions = cursor.fetchone()[0]

                return {
                    "total_sessions": total_sessions,
                    "status_breakdown": status_counts,
                    "average_alignment_score": round(avg_score, 3) if avg_score else 0,
                    "successful_rate": round(
                        (status_counts.get("completed", 0) / total_sessions * 100)
                        if total_sessions > 0
                        else 0,
                        1,
                    ),
                }

        except sqlite3.Error as e:
            self.logger.error(f"Failed to get statistics: {str(e)}")
            return {
                "total_sessions": 0,
                "status_breakdown": {},
                "average_alignment_score": 0,
                "successful_rate": 0,
            }


# Example usage


def load_base(db_path: str, sessions: List[Dict[str, Any]], created_at: Optional[List[str]] = None) -> None:
    """Store ``sessions`` as ``save_session`` would (same tables and columns), in one transaction;
    ``created_at`` (``YYYY-MM-DD HH:MM:SS``, the reference's CURRENT_TIMESTAMP format) per session, or
    the database's CURRENT_TIMESTAMP when None."""
    Database(db_path)  # the tables and indexes
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        if created_at is None:
            conn.executemany(
                "INSERT INTO sessions (id, image_path, naive_prompt, status, final_alignment_score, updated_at)"
                " VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP)",
                [
                    (
                        s["id"],
                        s.get("image_path", ""),
                        s.get("naive_prompt", ""),
                        s.get("status", "in_progress"),
                        s.get("final_alignment_score"),
                    )
                    for s in sessions
                ],
            )
        else:
            conn.executemany(
                "INSERT INTO sessions (id, image_path, naive_prompt, status, final_alignment_score, updated_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP, ?)",
                [
                    (
                        s["id"],
                        s.get("image_path", ""),
                        s.get("naive_prompt", ""),
                        s.get("status", "in_progress"),
                        s.get("final_alignment_score"),
                        at,
                    )
                    for s, at in zip(sessions, created_at, strict=True)
                ],
            )
        conn.executemany(
            "INSERT INTO prompts (session_id, iteration, positive_prompt, negative_prompt, quality_score)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    s["id"],
                    p.get("iteration", 0),
                    p.get("positive_prompt", ""),
                    p.get("negative_prompt", ""),
                    p.get("quality_score"),
                )
                for s in sessions
                for p in s.get("prompts", [])
            ],
        )
        conn.executemany(
            "INSERT INTO entities (session_id, entity_id, label, confidence, bbox_json, mask_path, color_hex,"
            " area_percent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s["id"],
                    e.get("entity_id", ""),
                    e.get("label", ""),
                    e.get("confidence", 0.0),
                    json.dumps(e.get("bbox", {})),
                    e.get("mask_path"),
                    e.get("color_hex"),
                    e.get("area_percent"),
                )
                for s in sessions
                for e in s.get("entities", [])
            ],
        )
        conn.executemany(
            "INSERT INTO validations (session_id, attempt_number, alignment_score, preserved_count,"
            " modified_count, unintended_count, user_feedback) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s["id"],
                    v.get("attempt_number", 0),
                    v.get("alignment_score", 0.0),
                    v.get("preserved_count", 0),
                    v.get("modified_count", 0),
                    v.get("unintended_count", 0),
                    v.get("user_feedback"),
                )
                for s in sessions
                for v in s.get("validations", [])
            ],
        )
        conn.executemany(
            "INSERT INTO user_feedback (session_id, feedback_type, comments, rating) VALUES (?, ?, ?, ?)",
            [
                (s["id"], f.get("feedback_type", "partial"), f.get("comments"), f.get("rating"))
                for s in sessions
                if (f := s.get("user_feedback"))
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
