"""DRF's JSON parser, refusing what its `json.load` lets through into a 500."""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

# An escaped surrogate in the text: only then is the full check worth its cost. Decoded
# UTF-8 never holds a surrogate itself; only a `\ud8xx` escape can make one.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONParser(parsers.JSONParser):
    """As DRF's, plus: nesting past the interpreter's recursion limit (`[[[[...` 50,000
    deep) and lone surrogates (`"\\ud800"`, which no database or UTF-8 response can hold)
    are parse errors (400), not server errors."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        # DRF's own charset rule (text codecs only); the stubs do not list it.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        if _ESCAPED_SURROGATE.search(text) and _has_lone_surrogate(data):
            raise ParseError("JSON parse error - a string holds a lone UTF-16 surrogate.")
        return data


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
