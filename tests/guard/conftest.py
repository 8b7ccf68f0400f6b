"""Fixtures shared by the prompt-injection tests (``test_injection.py``, ``test_injection_families.py``)."""

from __future__ import annotations

import pytest

from kefu.guard.injection import InjectionDetector


@pytest.fixture(scope="session")
def detector() -> InjectionDetector:
    """The shipped detector: rules and the n-gram model."""
    return InjectionDetector()


@pytest.fixture(scope="session")
def rules_only() -> InjectionDetector:
    """The rules without the model, to show what the patterns hold on their own."""
    return InjectionDetector(model=None)
