"""The building blocks of every config section: the strict pydantic model a section is made of
(``Section``) and the validated number types its keys use. A leaf module, so that each part of
bpnn can declare the section it owns (``bpnn.data.options.DataConfig``) and ``bpnn.config``
assemble them, without the two importing each other."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _positive_int(value: int) -> int:
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError("must be in [0, 1)")
    return value


PositiveInt = Annotated[int, Field(strict=True), AfterValidator(_positive_int)]
Fraction = Annotated[float, AfterValidator(_fraction)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    """A config section: unknown keys are errors, types are strict (no ``"0.01"`` where a number
    is meant, no ``"true"`` for a flag) and numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
