"""The raw columns a table model takes, as every export format reads them.

A model trained on a table (CSV, Parquet) carries its ``TableEncoding``: per raw column its
kind, its categories and its fill value. Each format writes that encoding down so that the copy
takes the raw rows ``bpnn predict`` takes; this module holds the facts they share:

- **missing cells**: ``None``, NaN, and the texts bpnn's readers take for "no value" (a blank,
  ``NA``, ``NaN``, ``null``, ``None``, in any case): ``MISSING_CELLS``;
- **category text**: bpnn names a category by ``category_text`` of the cell (text stripped,
  whole numbers without ``.0``), so ``2007`` and ``2007.0`` are the category ``"2007"``;
- **category values**: what pandas' CSV reader gives for each category's text, as the
  scikit-learn pipeline matches it: a float where every category is the text of a number,
  0 and 1 for ``False`` and ``True`` (pandas reads booleans, which equal them), else the text.

What a missing value becomes: the column's ``fill`` (``data.missing: impute``); without one,
bpnn refuses the row (``error``) or leaves it out (``drop``), and so do the copies (an error,
or NaN in the ONNX graph). An unknown category: all zeros (``data.unknown_category: ignore``),
else refused in the same way.
"""

from __future__ import annotations

from bpnn.data.formats import NA_CELLS
from bpnn.data.table import ColumnEncoding
from bpnn.data.table_columns import category_text

#: every text cell bpnn reads as missing (the CSV reader's ``na_values``), "" included
MISSING_CELLS: tuple[str, ...] = tuple(NA_CELLS)


def is_number_text(text: str) -> bool:
    """Whether ``text`` is what ``category_text`` writes for a number (``"2007"``, ``"2.5"``)."""
    try:
        number = float(text)
    except ValueError:
        return False
    return number == number and category_text(number) == text


def category_values(column: ColumnEncoding) -> list[float] | list[str]:
    """The categories of ``column`` as values that equal the cells pandas' CSV reader gives:
    floats when every category is the text of a number (a numeric column listed in
    ``data.categorical``), 0.0 and 1.0 for ``False`` and ``True`` (pandas reads booleans, and
    ``True == 1.0``), else the text itself."""
    texts = list(column.categories)
    if all(is_number_text(t) for t in texts):
        return [float(t) for t in texts]
    if set(texts) <= {"False", "True"}:
        return [float(t == "True") for t in texts]
    return texts


def text_spellings(category: str) -> list[str]:
    """The texts that name ``category``: itself and, for a whole number, its ``.0`` form (what
    ``str()`` of a float column gives)."""
    if is_number_text(category) and float(category).is_integer():
        return [category, f"{category}.0"]
    return [category]
