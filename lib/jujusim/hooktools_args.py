"""Argument parsing and output formatting for the simulated hook tools.

Juju's tools parse flags with gnuflag (flags may follow positional arguments, ``--``
ends them, ``--flag=value`` and ``--flag value`` both work, booleans take ``=true``)
and print through juju/cmd's formatters (``smart``, ``json``, ``yaml``). Charms depend
on both details, so they are reproduced here rather than borrowed from argparse,
whose conventions differ (abbreviations, exit codes, messages).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

__all__ = [
    "FORMAT_FLAGS",
    "RELATION_FLAG",
    "Flag",
    "FlagTable",
    "HelpRequested",
    "ParsedArgs",
    "UsageError",
    "parse_args",
    "parse_bool",
    "parse_key_values",
    "parse_settings_document",
    "render",
    "usage_text",
]


class UsageError(Exception):
    """Bad arguments: Juju prints ``ERROR <message>`` and exits 2."""


class HelpRequested(Exception):
    """``-h``/``--help`` was given: print the usage text and exit 0."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """One option of a tool, as gnuflag declares it."""

    names: tuple[str, ...]
    dest: str
    takes_value: bool = False
    default: Any = None
    help: str = ""


FORMAT_FLAGS = (
    Flag(("--format",), "format", True, "smart", "Specify output format (json|smart|yaml)"),
    Flag(("-o", "--output"), "output", True, "", "Specify an output file"),
)
RELATION_FLAG = Flag(("-r", "--relation"), "relation", True, "", "Specify a relation by id")

_BOOL_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_BOOL_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(text: str, flag: str) -> bool:
    """Go's ``strconv.ParseBool``, which is what ``--application=True`` goes through."""
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise UsageError(f'invalid value "{text}" for flag {flag}: parse error')


@dataclasses.dataclass
class ParsedArgs:
    """Flag values by ``dest`` and the positional arguments, in order."""

    opts: dict[str, Any]
    args: list[str]


class FlagTable:
    """A tool's flags by name and their defaults, built once per tool."""

    __slots__ = ("by_name", "defaults")

    def __init__(self, flags: Sequence[Flag]) -> None:
        self.by_name = {name: flag for flag in flags for name in flag.names}
        self.defaults: dict[str, Any] = {flag.dest: flag.default for flag in flags}


def parse_args(flags: Sequence[Flag] | FlagTable, argv: Sequence[str]) -> ParsedArgs:
    """Parse ``argv`` gnuflag-style with interspersed flags."""
    table = flags if isinstance(flags, FlagTable) else FlagTable(flags)
    by_name = table.by_name
    opts: dict[str, Any] = dict(table.defaults)
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            args.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in ("-h", "--help"):
            raise HelpRequested
        flag = by_name.get(name)
        if flag is None:
            raise UsageError(f"flag provided but not defined: {name}")
        if not flag.takes_value:
            opts[flag.dest] = parse_bool(value, name) if eq else True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: {name}")
            value = argv[i]
            i += 1
        opts[flag.dest] = value
    fmt = opts.get("format")
    if fmt and fmt not in ("smart", "json", "yaml"):
        raise UsageError(f'invalid value "{fmt}" for flag --format: unknown format "{fmt}"')
    return ParsedArgs(opts, args)


def usage_text(tool: str, usage: str, summary: str, flags: Sequence[Flag]) -> str:
    """Build a help page shaped like juju/cmd's (charmhelpers greps it for ``--file``)."""
    lines = [f"Usage: {tool} [options] {usage}".rstrip(), "", "Summary:", summary, ""]
    if flags:
        lines.append("Options:")
        for flag in flags:
            default = "" if flag.default is None else flag.default
            if flag.default is False:
                default = "false"
            lines.append(f"{', '.join(flag.names)}  (= {default})")
            lines.append(f"    {flag.help}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _as_str(value: Any) -> str:
    """Coerce a YAML scalar the way Go's yaml does when decoding into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def parse_settings_document(text: str) -> dict[str, str]:
    """Parse a ``--file`` body: JSON (ops) or YAML (charmhelpers); null deletes."""
    if not text.strip():
        return {}
    try:
        data: Any = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UsageError(f"cannot parse settings: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UsageError("expected YAML or JSON map of settings")
    return {str(k): _as_str(v) for k, v in data.items()}


def parse_key_values(args: Sequence[str]) -> dict[str, str]:
    """``key=value`` arguments; ``key=`` means delete for relation-set and leader-set."""
    out: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or not key:
            raise UsageError(f'expected "key=value", got "{arg}"')
        out[key] = value
    return out


def _yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=True)


_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
"""What ``json.dumps(value, separators=(",", ":"), sort_keys=True)`` builds per call."""


def render(value: Any, fmt: str) -> str:
    """Format ``value`` as juju/cmd's json, yaml or smart formatter would."""
    if fmt == "json":
        return _JSON.encode(value) + "\n"
    if value is None:
        return ""
    if fmt == "yaml":
        return _yaml(value)
    if isinstance(value, bool):
        return "True\n" if value else "False\n"
    if isinstance(value, str):
        return value if not value or value.endswith("\n") else value + "\n"
    if isinstance(value, int | float):
        return f"{value}\n"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(f"{v}\n" for v in value)
    return _yaml(value)
