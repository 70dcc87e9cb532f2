"""Command-line options from an algorithm's JSON Schema (fetched from the server).

`n_particles` becomes `--n-particles`, typed by the schema (integer, number,
boolean, string, arrays of those); enums become choices; the description, default,
range and unit make the help line. `--param NAME VALUE` (or `NAME=VALUE`) reaches any
parameter, and `--vary NAME=v1,v2,…` lists values for a sweep.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "add_schema_options",
    "collect_parameters",
    "convert",
    "option_name",
    "parse_vary",
]

PREFIX = "param__"  # dest prefix of schema options, apart from the command's own options


def option_name(parameter: str) -> str:
    return "--" + parameter.replace("_", "-")


def parameter_name(text: str) -> str:
    return text.strip().lstrip("-").replace("-", "_")


def _effective(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The non-null branch of `anyOf: [X, null]` (optional parameters)."""
    for branch in schema.get("anyOf", ()):
        if isinstance(branch, Mapping) and branch.get("type") != "null":
            return {**schema, **branch}
    return schema


def _scalar(type_name: str | None) -> Callable[[str], Any]:
    if type_name == "integer":
        return int
    if type_name == "number":
        return float
    if type_name == "boolean":
        return _boolean
    if type_name in ("object", None):
        return _json_or_text
    return str


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def convert(schema: Mapping[str, Any], text: str) -> Any:
    """A value of this parameter from its text (arrays: comma-separated)."""
    schema = _effective(schema)
    if text.strip().lower() in ("none", "null") and "anyOf" in schema:
        return None
    if schema.get("type") == "array":
        item = _scalar(_effective(schema.get("items", {})).get("type"))
        return [item(part) for part in text.split(",") if part.strip()]
    value = _scalar(schema.get("type"))(text)
    choices = schema.get("enum")
    if choices is not None and value not in choices:
        raise ValueError(f"{text!r} is not one of {', '.join(map(str, choices))}")
    return value


def _help(schema: Mapping[str, Any]) -> str:
    schema = _effective(schema)
    parts = [str(schema.get("description") or schema.get("title") or "")]
    bounds = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            bounds.append(f"{sign} {schema[key]}")
    if bounds:
        parts.append(f"[{', '.join(bounds)}]")
    if "unit" in schema:
        parts.append(f"({schema['unit']})")
    if "default" in schema:
        parts.append(f"default: {json.dumps(schema['default'])}")
    return " ".join(p for p in parts if p).replace("%", "%%")


def add_schema_options(
    parser: argparse.ArgumentParser, parameters: Mapping[str, Mapping[str, Any]], title: str
) -> None:
    """One option per parameter, in a group of its own; values are left None unless given."""
    group = parser.add_argument_group(title)
    taken = {option for action in parser._actions for option in action.option_strings}
    for name, raw in parameters.items():
        flag = option_name(name)
        if flag in taken:
            continue  # reachable with --param NAME VALUE
        schema = _effective(raw)
        kind = schema.get("type")
        kwargs: dict[str, Any] = {"dest": PREFIX + name, "default": None, "help": _help(raw)}
        if kind == "boolean":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind == "array":
            item = _effective(schema.get("items", {}))
            kwargs.update(nargs="+", type=_scalar(item.get("type")), metavar=item.get("type", "V"))
        else:
            kwargs["type"] = _argparse_type(raw)
            if "enum" in schema:
                kwargs["choices"] = schema["enum"]
            else:
                kwargs["metavar"] = {"integer": "N", "number": "X"}.get(str(kind), "VALUE")
        group.add_argument(flag, **kwargs)
        # The parameter's own spelling works too (`--n_particles`), as in --param and
        # --vary; only the dashed one is listed.
        spelled = "--" + name
        if spelled != flag and spelled not in taken:
            group.add_argument(spelled, **{**kwargs, "help": argparse.SUPPRESS})


def _argparse_type(schema: Mapping[str, Any]) -> Callable[[str], Any]:
    effective = _effective(schema)
    scalar = _scalar(effective.get("type"))

    def parse(text: str) -> Any:
        if "anyOf" in schema and text.strip().lower() in ("none", "null"):
            return None
        try:
            return scalar(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    parse.__name__ = str(effective.get("type") or "value")
    return parse


def collect_parameters(
    namespace: argparse.Namespace,
    parameters: Mapping[str, Mapping[str, Any]],
    generic: Sequence[Sequence[str]] | None,
) -> dict[str, Any]:
    """The parameters given: schema options, then `--param NAME VALUE` / `NAME=VALUE`."""
    values: dict[str, Any] = {}
    for key, value in vars(namespace).items():
        if key.startswith(PREFIX) and value is not None:
            values[key[len(PREFIX) :]] = value
    for item in generic or ():
        if len(item) == 1 and "=" in item[0]:
            raw_name, text = item[0].split("=", 1)
        elif len(item) == 2:
            raw_name, text = item
        else:
            raise ValueError(f"--param takes NAME VALUE or NAME=VALUE, not {' '.join(item)!r}")
        name = _known(parameter_name(raw_name), parameters)
        values[name] = _converted(name, parameters[name], text)
    return values


def _converted(name: str, schema: Mapping[str, Any], text: str) -> Any:
    """`convert`, its error naming the parameter."""
    try:
        return convert(schema, text)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def parse_vary(
    items: Sequence[str], parameters: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`--vary NAME=v1,v2,…` → sweep axes (values typed by the schema)."""
    axes = []
    for item in items:
        if "=" not in item:
            raise ValueError(f"--vary takes NAME=v1,v2,…, not {item!r}")
        raw_name, text = item.split("=", 1)
        name = _known(parameter_name(raw_name), parameters)
        schema = _effective(parameters[name])
        if schema.get("type") == "array":
            raise ValueError(f"{name} is a list parameter; vary a scalar parameter")
        values = [_converted(name, schema, part) for part in text.split(",") if part.strip()]
        if not values:
            raise ValueError(f"--vary {name}: no values")
        axes.append({"parameter": name, "values": values})
    return axes


def _known(name: str, parameters: Mapping[str, Mapping[str, Any]]) -> str:
    if name not in parameters:
        known = ", ".join(parameters) or "none"
        raise ValueError(f"unknown parameter {name!r}; known: {known}")
    return name
