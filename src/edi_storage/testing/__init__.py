"""Test support shipped with the package: factory-boy factories and pytest fixtures.

Applications built on edi-storage use them in their own tests (``pytest_plugins =
["edi_storage.testing.fixtures"]``); ``edi-storage demo`` and the benchmark use the input factories.
"""

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
