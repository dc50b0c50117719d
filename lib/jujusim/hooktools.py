"""Juju's hook tools, executed against a :class:`~jujusim.context.HookContext`.

A hook-tool executable on the charm's ``PATH`` forwards its name, argv and stdin to
the simulator (see :mod:`jujusim.hooktools_server`); :func:`call_tool` parses them as
Juju would and answers with the exit code, stdout and stderr Juju would give. Every
argv form that ops 3.x and charmhelpers use is accepted (juju-semantics.md section 5).
Ports are the one piece of state kept here, because the HookContext seam has no ports:
the runtime commits :attr:`ToolSession.ports` when the hook exits 0.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .context import HookContext, HookInvocation, HookToolError
from .hooktools_args import (
    FORMAT_FLAGS,
    RELATION_FLAG,
    Flag,
    FlagTable,
    HelpRequested,
    ParsedArgs,
    UsageError,
    parse_args,
    parse_key_values,
    parse_settings_document,
    render,
    usage_text,
)

__all__ = ["SUPPORTED_TOOLS", "TOOL_NAMES", "ToolResult", "ToolSession", "call_tool"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ToolSession:
    """One running hook as its hook tools see it."""

    ctx: HookContext
    invocation: HookInvocation
    env: Mapping[str, str]
    """The hook's environment; supplies Juju's defaults (``JUJU_RELATION_ID`` ...)."""
    endpoints: Sequence[str] = ()
    """Relation endpoints of the charm, to resolve a bare ``-r 3``."""
    ports: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Opened ports (``8080/tcp`` -> endpoints, ``*`` for all), as this hook sees them."""
    calls: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


@dataclasses.dataclass(frozen=True)
class ToolResult:
    """What the tool process prints and returns."""

    code: int
    stdout: str = ""
    stderr: str = ""


@dataclasses.dataclass(slots=True)
class _Call:
    session: ToolSession
    opts: dict[str, Any]
    args: list[str]
    stdin: str
    cwd: str

    @property
    def ctx(self) -> HookContext:
        return self.session.ctx

    def env(self, name: str) -> str:
        return self.session.env.get(name, "")

    def out(self, value: Any) -> str:
        text = render(value, str(self.opts.get("format") or "smart"))
        target = self.opts.get("output")
        if target:
            with open(os.path.join(self.cwd, target), "w", encoding="utf-8") as f:
                f.write(text)
            return ""
        return text


@dataclasses.dataclass(frozen=True)
class _Tool:
    usage: str
    summary: str
    flags: tuple[Flag, ...]
    handler: Callable[[_Call], str]
    table: FlagTable = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", FlagTable(self.flags))


def _bool_flag(names: tuple[str, ...], dest: str, text: str) -> Flag:
    return Flag(names, dest, False, False, text)


_APP = _bool_flag(("--app",), "app", "Use the application databag rather than the unit's")
_FILE = Flag(("--file",), "file", True, "", "File containing key-value pairs ('-' for stdin)")
_REL_REF = re.compile(r"^(?:([a-z][a-z0-9-]*):)?([0-9]+)$")


def _max_args(c: _Call, n: int) -> None:
    if len(c.args) > n:
        raise UsageError(f"unrecognized args: {c.args[n:]!r}")


def _relation(c: _Call) -> str:
    """Resolve ``-r`` (``endpoint:id`` or bare ``id``) or default to the hook's relation."""
    current = c.env("JUJU_RELATION_ID")
    ref = str(c.opts.get("relation") or "") or current
    if not ref:
        raise UsageError("no relation id specified")
    match = _REL_REF.match(ref)
    if match is None:
        raise UsageError(f'invalid value "{ref}" for option -r: invalid relation id')
    endpoint, number = match.groups()
    if current and (ref == current or (endpoint is None and current.endswith(f":{number}"))):
        return current
    candidates = [endpoint] if endpoint else list(c.session.endpoints)
    for name in candidates:
        full = f"{name}:{number}"
        if full in c.ctx.relation_ids(name):
            return full
    raise UsageError(f'invalid value "{ref}" for option -r: relation not found')


def _read_file_arg(c: _Call) -> dict[str, str]:
    path = str(c.opts.get("file") or "")
    if not path:
        return {}
    if path == "-":
        return parse_settings_document(c.stdin)
    try:
        with open(os.path.join(c.cwd, path), encoding="utf-8") as f:
            return parse_settings_document(f.read())
    except OSError as e:
        raise HookToolError(f"open {path}: {e.strerror}") from None


# --- relations ------------------------------------------------------------------------


def _relation_ids(c: _Call) -> str:
    _max_args(c, 1)
    name = c.args[0] if c.args else c.env("JUJU_RELATION")
    if not name:
        raise UsageError("no endpoint name specified")
    return c.out(c.ctx.relation_ids(name))


def _relation_list(c: _Call) -> str:
    _max_args(c, 0)
    rid = _relation(c)
    if c.opts["app"]:
        return c.out(c.ctx.relation_remote_app(rid))
    return c.out(c.ctx.relation_list(rid))


def _relation_get(c: _Call) -> str:
    _max_args(c, 2)
    rid = _relation(c)
    app = bool(c.opts["app"])
    key = c.args[0] if c.args else "-"
    owner = c.args[1] if len(c.args) > 1 else ""
    if not owner:
        owner = c.env("JUJU_REMOTE_APP") if app else c.env("JUJU_REMOTE_UNIT")
    if not owner:
        raise UsageError("no unit or application specified")
    if app:
        owner = owner.split("/", 1)[0]
    bag = c.ctx.relation_get(rid, owner, app=app)
    return c.out(bag if key in ("-", "") else bag.get(key))


def _relation_set(c: _Call) -> str:
    rid = _relation(c)
    changes = _read_file_arg(c)
    changes.update(parse_key_values(c.args))
    if changes:
        c.ctx.relation_set(rid, changes, app=bool(c.opts["app"]))
    return ""


def _relation_model_get(c: _Call) -> str:
    _max_args(c, 0)
    _relation(c)
    return c.out({"uuid": c.ctx.model_uuid})


# --- leadership, config, status, logging ----------------------------------------------


def _is_leader(c: _Call) -> str:
    _max_args(c, 0)
    return c.out(c.ctx.is_leader())


def _leader_get(c: _Call) -> str:
    _max_args(c, 1)
    key = c.args[0] if c.args else "-"
    settings = c.ctx.leader_get()
    return c.out(settings if key == "-" else settings.get(key))


def _leader_set(c: _Call) -> str:
    c.ctx.leader_set(parse_key_values(c.args))
    return ""


def _config_get(c: _Call) -> str:
    _max_args(c, 1)
    config = c.ctx.config_get()
    if c.args:
        if c.opts["all"]:
            raise UsageError(f'cannot use argument --all together with key "{c.args[0]}"')
        return c.out(config.get(c.args[0]))
    if not c.opts["all"]:
        config = {k: v for k, v in config.items() if v is not None}
    return c.out(config)


_SETTABLE = ("maintenance", "blocked", "waiting", "active")


def _status_set(c: _Call) -> str:
    if not c.args:
        raise UsageError("invalid args, require <status> [message]")
    _max_args(c, 2)
    status = c.args[0]
    if status not in _SETTABLE:
        raise UsageError(f'invalid status "{status}", expected one of [{" ".join(_SETTABLE)}]')
    message = c.args[1] if len(c.args) > 1 else ""
    c.ctx.status_set(status, message, application=bool(c.opts["application"]))
    return ""


def _status_dict(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": raw.get("status", "unknown"),
        "message": raw.get("message", ""),
        "status-data": dict(raw.get("status-data") or {}),
    }


def _status_get(c: _Call) -> str:
    _max_args(c, 0)
    app = bool(c.opts["application"])
    raw = c.ctx.status_get(application=app)
    if not app:
        unit = _status_dict(raw)
        return c.out(unit if c.opts["include_data"] else unit["status"])
    app_raw = raw.get("application-status", raw)
    units = {name: _status_dict(s) for name, s in (raw.get("units") or {}).items()}
    return c.out({"application-status": _status_dict(app_raw), "units": units})


def _juju_log(c: _Call) -> str:
    message = " ".join(c.args)
    if not message:
        raise UsageError("no message specified")
    level = "DEBUG" if c.opts["debug"] else str(c.opts["level"] or "INFO").upper()
    c.ctx.juju_log(level, message)
    return ""


def _application_version_set(c: _Call) -> str:
    if not c.args:
        raise UsageError("no version specified")
    _max_args(c, 1)
    c.ctx.application_version_set(c.args[0])
    return ""


def _goal_state(c: _Call) -> str:
    _max_args(c, 0)
    return c.out(c.ctx.goal_state())


# --- actions ----------------------------------------------------------------------------

_ACTION_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_RESERVED_RESULTS = frozenset({"stdout", "stdout-encoding", "stderr", "stderr-encoding"})


def _require_action(c: _Call) -> None:
    if c.session.invocation.kind != "action":
        raise HookToolError("not running an action")


def _action_get(c: _Call) -> str:
    _require_action(c)
    _max_args(c, 1)
    value: Any = c.ctx.action_get()
    if c.args:
        for part in c.args[0].split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    return c.out(value)


def _action_set(c: _Call) -> str:
    _require_action(c)
    results = parse_key_values(c.args)
    for key in results:
        if not all(_ACTION_KEY.match(part) for part in key.split(".")):
            raise UsageError(
                f'key "{key}" must start and end with lowercase alphanumeric, '
                "and contain only lowercase alphanumeric, hyphens and periods"
            )
        if key in _RESERVED_RESULTS:
            raise UsageError(f'cannot set reserved action key "{key}"')
    c.ctx.action_set(results)
    return ""


def _action_fail(c: _Call) -> str:
    _require_action(c)
    c.ctx.action_fail(" ".join(c.args) or "action failed without reason given")
    return ""


def _action_log(c: _Call) -> str:
    _require_action(c)
    if not c.args:
        raise UsageError("no message specified")
    c.ctx.action_log(" ".join(c.args))
    return ""


# --- unit state ---------------------------------------------------------------------------


def _state_get(c: _Call) -> str:
    _max_args(c, 1)
    state = c.ctx.state_get()
    if not c.args:
        return c.out(state)
    key = c.args[0]
    if key not in state and c.opts["strict"]:
        raise HookToolError(f'"{key}" not found')
    return c.out(state.get(key))


def _state_set(c: _Call) -> str:
    changes = _read_file_arg(c)
    changes.update(parse_key_values(c.args))
    for key in [k for k, v in changes.items() if v == ""]:
        del changes[key]
        c.ctx.state_delete(key)
    if changes:
        c.ctx.state_set(changes)
    return ""


def _state_delete(c: _Call) -> str:
    if len(c.args) != 1:
        raise UsageError("specify one key to delete")
    c.ctx.state_delete(c.args[0])
    return ""


# --- networking and ports ---------------------------------------------------------------


def _first_address(info: Mapping[str, Any]) -> str:
    for bind in info.get("bind-addresses") or []:
        for address in bind.get("addresses") or []:
            value = address.get("value") or address.get("address")
            if value:
                return str(value)
    ingress = info.get("ingress-addresses") or [""]
    return str(ingress[0])


def _network_get(c: _Call) -> str:
    if not c.args:
        raise UsageError("no arguments specified")
    _max_args(c, 1)
    if c.opts.get("relation"):
        _relation(c)
    info = c.ctx.network_get(c.args[0])
    if c.opts["primary_address"]:
        return c.out(_first_address(info))
    picked = {
        "bind-address": _first_address(info) if c.opts["bind_address"] else None,
        "ingress-address": (info.get("ingress-addresses") or [""])[0]
        if c.opts["ingress_address"]
        else None,
        "egress-subnets": ",".join(info.get("egress-subnets") or [])
        if c.opts["egress_subnets"]
        else None,
    }
    chosen = {k: v for k, v in picked.items() if v is not None}
    if len(chosen) == 1:
        return c.out(next(iter(chosen.values())))
    return c.out(chosen or info)


def _unit_get(c: _Call) -> str:
    if len(c.args) != 1:
        raise UsageError("no setting specified" if not c.args else f"unrecognized args: {c.args}")
    if c.args[0] not in ("private-address", "public-address"):
        raise UsageError(f'unknown setting "{c.args[0]}"')
    return c.out(c.ctx.unit_get(c.args[0]))


_PORT = re.compile(r"^([0-9]+)(?:-([0-9]+))?(?:/(tcp|udp))?$")


def _port_spec(c: _Call) -> str:
    if len(c.args) != 1:
        raise UsageError("no port or range specified" if not c.args else "too many arguments")
    arg = c.args[0].lower()
    if arg == "icmp":
        return arg
    match = _PORT.match(arg)
    lo, hi = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
    if match is None or not 1 <= lo <= hi <= 65535:
        raise UsageError(f'invalid port or range "{c.args[0]}"')
    span = f"{lo}-{hi}" if hi != lo else str(lo)
    return f"{span}/{match[3] or 'tcp'}"


def _endpoints(c: _Call) -> tuple[str, ...]:
    raw = str(c.opts.get("endpoints") or "")
    return tuple(sorted(e for e in raw.split(",") if e)) or ("*",)


def _open_port(c: _Call) -> str:
    c.session.ports[_port_spec(c)] = _endpoints(c)
    return ""


def _close_port(c: _Call) -> str:
    c.session.ports.pop(_port_spec(c), None)
    return ""


def _opened_ports(c: _Call) -> str:
    _max_args(c, 0)
    ports = sorted(c.session.ports.items())
    if c.opts["endpoints"]:
        return c.out([f"{spec} ({','.join(eps)})" for spec, eps in ports])
    return c.out([spec for spec, _ in ports])


# --- the table ------------------------------------------------------------------------------


def _t(usage: str, summary: str, handler: Callable[[_Call], str], *flags: Flag) -> _Tool:
    return _Tool(usage, summary, tuple(flags), handler)


_F = FORMAT_FLAGS
_YAML_F = (dataclasses.replace(FORMAT_FLAGS[0], default="yaml"), FORMAT_FLAGS[1])
_APPLICATION = _bool_flag(("--application",), "application", "Use the application's status")

_TOOLS: dict[str, _Tool] = {
    "relation-ids": _t(
        "<name>", "List all relation ids for the given endpoint.", _relation_ids, *_F
    ),
    "relation-list": _t("", "List relation units.", _relation_list, *_F, RELATION_FLAG, _APP),
    "relation-get": _t(
        "<key|-> <unit|app>", "Get relation settings.", _relation_get, *_F, RELATION_FLAG, _APP
    ),
    "relation-set": _t(
        "key=value [key=value ...]",
        "Set relation settings.",
        _relation_set,
        RELATION_FLAG,
        _APP,
        _FILE,
        Flag(("--format",), "format", True, "", "Deprecated format flag"),
    ),
    "relation-model-get": _t(
        "",
        "Get details about the model hosting a related application.",
        _relation_model_get,
        *_F,
        RELATION_FLAG,
    ),
    "is-leader": _t("", "Print application leadership status.", _is_leader, *_F),
    "leader-get": _t("[<key>]", "Print application leadership settings.", _leader_get, *_F),
    "leader-set": _t("<key>=<value> [...]", "Write application leadership settings.", _leader_set),
    "config-get": _t(
        "[<key>]",
        "Print application configuration.",
        _config_get,
        *_F,
        _bool_flag(("-a", "--all"), "all", "Print all keys"),
    ),
    "status-set": _t(
        "<maintenance | blocked | waiting | active> [message]",
        "Set status information.",
        _status_set,
        _APPLICATION,
    ),
    "status-get": _t(
        "[--include-data] [--application]",
        "Print status information.",
        _status_get,
        *_F,
        _APPLICATION,
        _bool_flag(("--include-data",), "include_data", "Print all status data"),
    ),
    "juju-log": _t(
        "<message>",
        "Write a message to the juju log.",
        _juju_log,
        _bool_flag(("--debug",), "debug", "Log at debug level"),
        Flag(("-l", "--log-level"), "level", True, "INFO", "Send log message at the given level"),
        Flag(("--format",), "format", True, "", "Ignored"),
    ),
    "application-version-set": _t(
        "<new-version>",
        "Specify which version of the application is deployed.",
        _application_version_set,
    ),
    "goal-state": _t(
        "", "Print the status of the charm's peers and related units.", _goal_state, *_YAML_F
    ),
    "action-get": _t("[<key>[.<key>...]]", "Get action parameters.", _action_get, *_F),
    "action-set": _t("<key>=<value> [...]", "Set action results.", _action_set),
    "action-fail": _t("[<failure message>]", "Set action fail status with message.", _action_fail),
    "action-log": _t(
        "<message>", "Record a progress message for the current action.", _action_log
    ),
    "state-get": _t(
        "[<key>]",
        "Print server-side-state value.",
        _state_get,
        *_F,
        _bool_flag(("--strict",), "strict", "Return an error if the key is not found"),
    ),
    "state-set": _t(
        "[--file <path>] [key=value ...]", "Set server-side-state values.", _state_set, _FILE
    ),
    "state-delete": _t("<key>", "Delete server-side-state key value pairs.", _state_delete),
    "network-get": _t(
        "<binding-name>",
        "Get network config.",
        _network_get,
        *_F,
        RELATION_FLAG,
        _bool_flag(("--primary-address",), "primary_address", "Get the primary address"),
        _bool_flag(("--bind-address",), "bind_address", "Get the bind address"),
        _bool_flag(("--ingress-address",), "ingress_address", "Get the ingress address"),
        _bool_flag(("--egress-subnets",), "egress_subnets", "Get the egress subnets"),
    ),
    "unit-get": _t("<setting>", "Print public-address or private-address.", _unit_get, *_F),
    "open-port": _t(
        "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp",
        "Register a request to open a port or port range.",
        _open_port,
        Flag(("--endpoints",), "endpoints", True, "", "A comma-delimited list of endpoints"),
        Flag(("--format",), "format", True, "", "Ignored"),
    ),
    "close-port": _t(
        "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp",
        "Register a request to close a port or port range.",
        _close_port,
        Flag(("--endpoints",), "endpoints", True, "", "A comma-delimited list of endpoints"),
        Flag(("--format",), "format", True, "", "Ignored"),
    ),
    "opened-ports": _t(
        "",
        "List all ports or port ranges opened by the unit.",
        _opened_ports,
        *_F,
        _bool_flag(("--endpoints",), "endpoints", "Show the endpoints of each port"),
    ),
}

SUPPORTED_TOOLS = frozenset(_TOOLS)
_UNSUPPORTED = frozenset({
    "add-metric", "credential-get", "juju-reboot", "k8s-raw-get", "k8s-raw-set",
    "k8s-spec-get", "k8s-spec-set", "payload-register", "payload-status-set",
    "payload-unregister", "pod-spec-get", "pod-spec-set", "resource-get", "secret-add",
    "secret-get", "secret-grant", "secret-ids", "secret-info-get", "secret-remove",
    "secret-revoke", "secret-set", "storage-add", "storage-get", "storage-list",
})  # fmt: skip
TOOL_NAMES = SUPPORTED_TOOLS | _UNSUPPORTED
"""Every name that gets an executable; other names are "command not found", as in Juju."""


_PARSED: dict[tuple[str, tuple[str, ...]], ParsedArgs] = {}
_MEMO_TOOLS = frozenset({
    "relation-ids", "relation-list", "relation-get", "relation-model-get", "is-leader",
    "leader-get", "config-get", "status-get", "goal-state", "state-get", "opened-ports",
})  # fmt: skip
"""Read-only tools whose argv repeat (ops asks the same few questions every hook)."""


def _parse(tool: str, spec: _Tool, argv: Sequence[str]) -> ParsedArgs:
    """``parse_args`` for the tool, remembered per argv for the tools that repeat.

    Parsing is a pure function of the argv; each call gets its own copy of the result.
    Errors are never remembered: they are raised afresh each time.
    """
    if tool not in _MEMO_TOOLS:
        return parse_args(spec.table, argv)
    key = (tool, tuple(argv))
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = parse_args(spec.table, argv)
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        _PARSED[key] = parsed
    return ParsedArgs(dict(parsed.opts), list(parsed.args))


def _error(message: str, code: int) -> ToolResult:
    return ToolResult(code, "", f"ERROR {message}\n")


def call_tool(
    session: ToolSession, tool: str, argv: Sequence[str], stdin: str = "", cwd: str = "."
) -> ToolResult:
    """Run hook tool ``tool`` with ``argv`` for the hook of ``session``; never raises."""
    with session.lock:
        session.calls += 1
        spec = _TOOLS.get(tool)
        if spec is None:
            if tool in _UNSUPPORTED:
                return _error(f"{tool} is not supported by the jujusim simulator", 1)
            return _error(f"unknown hook tool {tool!r}", 127)
        try:
            parsed = _parse(tool, spec, argv)
            return ToolResult(
                0, spec.handler(_Call(session, parsed.opts, parsed.args, stdin, cwd))
            )
        except HelpRequested:
            return ToolResult(0, usage_text(tool, spec.usage, spec.summary, spec.flags))
        except UsageError as e:
            return _error(str(e), 2)
        except HookToolError as e:
            return _error(e.message, e.code)
        except Exception as e:  # a bug in the context must fail the hook, not the server
            logger.exception("hook tool %s %r failed inside the simulator", tool, list(argv))
            return _error(f"internal simulator error: {e!r}", 1)
