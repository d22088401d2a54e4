"""Test support shipped with the package: factory-boy factories and pytest fixtures.

Applications built on edi-storage use them in their own tests (``pytest_plugins =
["edi_storage.testing.fixtures"]``); ``edi-storage demo`` and the benchmark use the input factories.
They need the ``testing`` extra (factory-boy, Faker, pytest): ``pip install 'edi-storage[testing]'``;
the rest of the package never imports this one.
"""

import importlib.util

if importlib.util.find_spec("factory") is None:  # the wheel check runs without the extra
    raise ImportError("edi_storage.testing needs the testing extra: pip install 'edi-storage[testing]'")

from edi_storage.testing.factories import (
    EntityFactory,
    EntityInFactory,
    FeedbackFactory,
    FeedbackInFactory,
    GeneratedImageFactory,
    ImageCreateFactory,
    LibraryPromptFactory,
    PromptFactory,
    PromptInFactory,
    SessionCreateFactory,
    SessionFactory,
    ValidationFactory,
    ValidationInFactory,
    bind_factories,
    create,
    seed,
)

__all__ = [
    "EntityFactory",
    "EntityInFactory",
    "FeedbackFactory",
    "FeedbackInFactory",
    "GeneratedImageFactory",
    "ImageCreateFactory",
    "LibraryPromptFactory",
    "PromptFactory",
    "PromptInFactory",
    "SessionCreateFactory",
    "SessionFactory",
    "ValidationFactory",
    "ValidationInFactory",
    "bind_factories",
    "create",
    "seed",
]
