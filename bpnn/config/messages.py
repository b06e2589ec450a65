"""Pydantic's validation errors as one line naming the key (``model.hidden[1]: must be a positive
integer, got 0``), with a did-you-mean for an unknown key.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from bpnn.config.sections import Config
from bpnn.errors import short


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The config section (a pydantic model) an annotation holds, directly or in a union."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _location(loc: Sequence[str | int], root: type[BaseModel]) -> str:
    """``("model", "hidden", 1)`` -> ``model.hidden[1]``: the parts of pydantic's location that
    are fields of our own sections (walked from ``root``), list indexes, or keys of a mapping
    field; anything else in it (the branch of a union, a validator) is not a key."""
    out, section, in_mapping = "", root, False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif section is not None and part in section.model_fields:
            out += f".{part}" if out else part
            annotation = section.model_fields[part].annotation
            in_mapping = getattr(annotation, "__origin__", None) is dict
            section = _section_model(annotation)
        elif in_mapping:
            out += f".{part}"
            in_mapping = False
    return out


def _describe(error: ValidationError, root: type[BaseModel], prefix: str = "") -> str:
    """One line for the first problem pydantic found: ``key: what is wrong, got VALUE``."""
    problems = error.errors(include_url=False)

    def specificity(problem: Any) -> tuple[bool, int]:
        # among the branches of a union (0.1 or [0.1, 0.2]) the error about the value beats
        # the one that only says the value has the other branch's type
        wrong_type = problem["type"].endswith(("_type", "_parsing"))
        return (not wrong_type, len(problem["loc"]))

    first = max(problems, key=specificity)
    loc = (prefix + _location(first["loc"], root)).rstrip(".")
    if first["type"] == "extra_forbidden":  # the unknown key is the location's last part
        where = (prefix + _location(first["loc"][:-1], root)).rstrip(".")
        return (
            f"{where}.{first['loc'][-1]}: unknown key"
            if where
            else f"{first['loc'][-1]}: unknown key"
        )
    if first["type"] == "missing":
        return f"{loc}: required"
    message = first["msg"].replace("Value error, ", "").replace("Input should be", "must be")
    got = first.get("input")
    if first["type"] == "value_error" and (isinstance(got, dict) or "got" in message):
        # our own validators already name the key (model-level checks) or the value
        return (
            f"{loc}: {message}"
            if loc and not message.startswith(("data.", "model.", "set "))
            else message
        )
    suffix = "" if isinstance(got, dict | list) else f", got {short(got)}"
    return f"{loc}: {message}{suffix}" if loc else f"{message}{suffix}"


def _suggest_unknown(error: ValidationError) -> str | None:
    """For an unknown key, suggest the closest known key of the same section."""
    first = error.errors(include_url=False)[0]
    if first["type"] != "extra_forbidden":
        return None
    loc = [p for p in first["loc"] if isinstance(p, str)]
    section: Any = Config
    for part in loc[:-1]:
        field = getattr(section, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        section = next(
            (
                a
                for a in getattr(annotation, "__args__", (annotation,))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if section is None:
            return None
    known = [k for k in section.model_fields if k != "options"]
    return _did_you_mean(loc[-1], known) or f" (keys: {', '.join(known)})"


def _did_you_mean(word: str, choices: Sequence[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
