"""Issue 12: the strategy conformance suite on "ray", equal to "concurrent"."""

from __future__ import annotations

import pytest

from routilux.strategies import create_strategy
from routilux.testing import CHECKS

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_issue_12_conformance_on_ray(ray_instance: object, check: str) -> None:
    CHECKS[check](lambda: create_strategy("ray", 4, "conformance-ray"))
