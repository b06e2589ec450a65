"""``Formula``: a component's formula as plain text (a terminal) and as LaTeX (Markdown)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Formula:
    """One formula written twice: ``text`` for a terminal, ``latex`` for a document."""

    text: str
    latex: str
