"""The example session of storage-database.md, as the reference implementation's callers write it.

Tests of the service, of the CLI and of applications built on edi-storage start from the same dict, so
that "accepts the reference dict shape" is checked against one definition of that shape.
"""

from __future__ import annotations

import copy
from typing import Any

REFERENCE_SESSION: dict[str, Any] = {
    "id": "session-789",
    "image_path": "/path/to/example.jpg",
    "naive_prompt": "make the sky more dramatic",
    "status": "completed",
    "final_alignment_score": 0.85,
    "prompts": [
        {
            "iteration": 0,
            "positive_prompt": "dramatic sky with storm clouds",
            "negative_prompt": "sunny sky, clear weather",
            "quality_score": 0.92,
        }
    ],
    "entities": [
        {
            "entity_id": "sky_0",
            "label": "sky",
            "confidence": 0.95,
            "bbox": {"x1": 0, "y1": 0, "x2": 1920, "y2": 768},
            "mask_path": "/path/to/mask.png",
            "color_hex": "#87CEEB",
            "area_percent": 39.6,
        }
    ],
    "validations": [
        {
            "attempt_number": 1,
            "alignment_score": 0.85,
            "preserved_count": 3,
            "modified_count": 1,
            "unintended_count": 0,
            "user_feedback": "Great improvement to the sky!",
        }
    ],
    "user_feedback": {"feedback_type": "accept", "comments": "Perfect! Exactly what I wanted.", "rating": 5},
}


def reference_session(**overrides: Any) -> dict[str, Any]:
    """A fresh deep copy of the reference example, with top-level fields replaced by ``overrides``."""
    return {**copy.deepcopy(REFERENCE_SESSION), **overrides}
