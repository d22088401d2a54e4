"""An autosaver that loses nothing on a clean stop and writes nothing when nothing changed.

Changes go through ``update()``. A significant event (a stage change, a new prompt iteration, a new
validation) is saved at once, in the caller's thread; anything else marks the state dirty and a
background thread saves it within ``interval`` seconds. ``stop()`` (or leaving the ``with`` block)
saves what is still dirty and ends the thread. An error in the background save is not swallowed: it is
raised by the next ``update()`` or by ``stop()``.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from edi_storage.schemas.common import parse
from edi_storage.state.model import SessionState
from edi_storage.state.store import StateStore


def is_significant(before: SessionState, after: SessionState) -> bool:
    return (
        before.current_stage != after.current_stage
        or not set(after.prompts) <= set(before.prompts)
        or before.validation != after.validation
    )


class AutoSaver:
    def __init__(self, store: StateStore, state: SessionState, *, interval: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self._state = state
        self._dirty = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"autosave-{state.session_id}", daemon=True)
        self.saves = 0  # how many files were written: for tests and for the curious

    @property
    def state(self) -> SessionState:
        return self._state

    def start(self) -> AutoSaver:
        self._thread.start()
        return self

    def update(self, **changes: Any) -> SessionState:
        """Apply ``changes`` (validated: InvalidInput names the field); save now if significant."""
        self._raise_background_error()
        with self._lock:
            before = self._state
            after = parse(SessionState, {**before.model_dump(), **changes})
            if after == before:
                return after
            self._state = after
            self._dirty = True
            if is_significant(before, after):
                self._save_locked()
        return after

    def flush(self) -> None:
        with self._lock:
            if self._dirty:
                self._save_locked()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        self._raise_background_error()

    def _save_locked(self) -> None:
        self.store.save(self._state)
        self._dirty = False
        self.saves += 1

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.flush()
            # A thread cannot raise into its caller: the error is kept and raised by the next update()
            # or stop(), and the timer keeps trying.
            except Exception as error:  # noqa: BLE001
                self._error = error

    def _raise_background_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> AutoSaver:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
