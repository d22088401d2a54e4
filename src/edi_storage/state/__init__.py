"""The JSON session-state file: its versioned model, an atomic store, an autosaver, and resume."""

from edi_storage.state.autosave import AutoSaver
from edi_storage.state.model import STATE_VERSION, SessionState, Stage, read_state
from edi_storage.state.resume import session_to_state, state_to_session
from edi_storage.state.store import StateFileError, StateStore, load_state_file

__all__ = [
    "STATE_VERSION",
    "AutoSaver",
    "SessionState",
    "Stage",
    "StateFileError",
    "StateStore",
    "load_state_file",
    "read_state",
    "session_to_state",
    "state_to_session",
]
