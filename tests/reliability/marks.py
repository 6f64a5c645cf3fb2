"""The marks of a full (long) run: deselected by default, and allowed past the suite's 300 s timeout."""

from __future__ import annotations

import pytest

__all__ = ["LONG_MARKS"]

LONG_MARKS = (pytest.mark.reliability_long, pytest.mark.timeout(3600))
