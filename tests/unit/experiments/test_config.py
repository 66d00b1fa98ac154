"""Experiment definitions: arms parsed from the CLI form, specs validated and round-tripped."""

from __future__ import annotations

import pytest

from trajops.errors import ValidationError
from trajops.experiments.config import Arm, ExperimentSpec, parse_arm

ARMS = (Arm("control", "champion", 80), Arm("treatment", "challenger", 20))


def test_parse_arm_and_spec_validation() -> None:
    arm = parse_arm("control=champion:70")
    assert (arm.name, arm.model_ref, arm.weight) == ("control", "champion", 70.0)
    assert parse_arm("b=3").weight == 50.0
    with pytest.raises(ValidationError, match="name=alias_or_version"):
        parse_arm("nonsense")
    with pytest.raises(ValidationError, match="not a number"):
        parse_arm("a=champion:lots")
    with pytest.raises(ValidationError, match="at least one challenger"):
        ExperimentSpec(name="x", arms=(ARMS[0],))
    with pytest.raises(ValidationError, match="unique"):
        ExperimentSpec(name="x", arms=(ARMS[0], ARMS[0]))
    with pytest.raises(ValidationError, match="mode"):
        ExperimentSpec(name="x", arms=ARMS, mode="canary")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="alpha"):
        ExperimentSpec(name="x", arms=ARMS, alpha=0.7)
    spec = ExperimentSpec(name="x", arms=ARMS, mode="shadow")
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
