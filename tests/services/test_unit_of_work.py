"""A unit of work is one transaction over several service calls: all of it commits, or none of it."""

from __future__ import annotations

import pytest

from edi_storage import InvalidInput, NotFound, Storage
from edi_storage.testing import SessionCreateFactory


def test_calls_in_a_unit_of_work_commit_together(storage: Storage) -> None:
    with storage.unit_of_work(actor="tester") as uow:
        assert uow.actor == "tester"
        session_id = uow.sessions.save_session(SessionCreateFactory.build())
        uow.sessions.record_feedback(session_id, {"feedback_type": "accept", "rating": 4})
        uow.sessions.update_session_status(session_id, "completed", 0.8)
        assert uow.sessions.get_session_count() == 1, "reads inside the unit of work see its writes"
    loaded = storage.sessions.load_session(session_id)
    assert loaded is not None and len(loaded.feedback) == 2


def test_an_exception_rolls_back_every_call(storage: Storage) -> None:
    with pytest.raises(NotFound), storage.unit_of_work() as uow:
        uow.sessions.save_session(SessionCreateFactory.build())
        uow.sessions.save_session(SessionCreateFactory.build())
        uow.sessions.record_feedback("ghost", {"feedback_type": "accept"})
    assert storage.sessions.get_session_count() == 0


def test_a_user_exception_rolls_back_too(storage: Storage) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), storage.unit_of_work() as uow:
        uow.sessions.save_session(SessionCreateFactory.build())
        raise Abort
    assert storage.sessions.get_session_count() == 0


def test_invalid_input_inside_a_unit_of_work_writes_nothing(storage: Storage) -> None:
    with pytest.raises(InvalidInput), storage.unit_of_work() as uow:
        uow.sessions.save_session(SessionCreateFactory.build())
        uow.sessions.save_session({"image_path": "x", "naive_prompt": "y", "status": "bogus"})
    assert storage.sessions.get_session_count() == 0


def test_service_calls_outside_a_unit_of_work_are_transactions_of_their_own(storage: Storage) -> None:
    first = storage.sessions.save_session(SessionCreateFactory.build())
    with pytest.raises(InvalidInput):
        storage.sessions.save_session({"image_path": "", "naive_prompt": "y"})
    assert storage.sessions.load_session(first) is not None
