"""Object ids as every door reads them: ASCII digits naming a positive 64-bit integer.

`int()` alone accepts far more (`" 1"`, `"1_0"`, Arabic-Indic digits, values past the
database's 64-bit columns, which SQLite answers with an overflow error): each door parses
ids here, so a malformed one is a 404 (URLs) or a 400 naming the field, never a 500.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from simlab.core.errors import ValidationFailed

MAX_ID = 2**63 - 1
ID_PATTERN = "[0-9]{1,19}"


def is_object_id(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= 19 and 0 < int(raw) <= MAX_ID


def parse_id(raw: str, field: str) -> int:
    """`raw` as an id, or ValidationFailed naming `field`."""
    if is_object_id(raw):
        return int(raw)
    raise ValidationFailed(
        f"Invalid input: {field}: must be a positive integer.",
        details={field: ["Must be a positive integer."]},
    )


def _ascii_digits(value: object) -> object:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a positive integer in ASCII digits")
    return value


# For FastAPI/pydantic parameters: the same rule, answered as a 422 naming the field.
ObjectId = Annotated[int, BeforeValidator(_ascii_digits), Field(gt=0, le=MAX_ID)]


class ObjectIdConverter:
    """Django path converter `<id:name>`: a URL with any other id does not match (404)."""

    regex = ID_PATTERN

    def to_python(self, value: str) -> int:
        if not is_object_id(value):
            raise ValueError(value)  # Django: this pattern does not match
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)
