"""Settings: config/contactcentre.toml, then CC_* environment variables.

Loaded once at start-up into frozen dataclasses. A wrong value stops start-up
with one ConfigError line naming the key, the value and what is allowed.
Nothing else in the package reads os.environ.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "contactcentre.toml"
ENV_PREFIX = "CC_"


class ConfigError(ValueError):
    """A setting is missing or has a value that is not allowed."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///contactcentre.db"


@dataclass(frozen=True)
class PbxSettings:
    mode: str = "simulator"


@dataclass(frozen=True)
class AmiSettings:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "contactcentre"
    secret: str = ""
    connect_timeout: float = 5.0
    action_timeout: float = 5.0
    reconnect_max_delay: float = 30.0
    ping_interval: float = 10.0
    record_file: str = ""


@dataclass(frozen=True)
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    command_timeout: float = 30.0


@dataclass(frozen=True)
class SimulatorSettings:
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    agi_url: str = ""
    calls_per_minute: float = 4.0
    unknown_caller_share: float = 0.2
    talk_limit: float = 600.0
    patience: float = 300.0


@dataclass(frozen=True)
class RoutingSettings:
    queue: str = "support"
    ring_timeout: int = 20
    pop_wait: float = 1.0
    dispositions: tuple[str, ...] = ("resolved", "follow-up", "escalated", "wrong-number", "no-answer")


@dataclass(frozen=True)
class WebSettings:
    session_secret: str = ""
    session_max_age: int = 28800
    redis_url: str = ""


@dataclass(frozen=True)
class CrmSettings:
    default_region: str = "GB"
    pop_interactions: int = 5


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"


# What each value may be, beyond its type: key -> (check, what is allowed).
_RULES: dict[str, tuple[typing.Callable[[object], bool], str]] = {
    "server.port": (lambda v: 0 <= v <= 65535, "a TCP port 0..65535"),
    "ami.port": (lambda v: 0 <= v <= 65535, "a TCP port 0..65535"),
    "agi.port": (lambda v: 0 <= v <= 65535, "a TCP port 0..65535"),
    "simulator.ami_port": (lambda v: 0 <= v <= 65535, "a TCP port 0..65535"),
    "pbx.mode": (lambda v: v in ("simulator", "asterisk"), "simulator|asterisk"),
    "database.url": (
        lambda v: v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
        "a sqlite+aiosqlite:// or postgresql+asyncpg:// URL",
    ),
    "ami.connect_timeout": (lambda v: v > 0, "seconds greater than 0"),
    "ami.action_timeout": (lambda v: v > 0, "seconds greater than 0"),
    "ami.reconnect_max_delay": (lambda v: v > 0, "seconds greater than 0"),
    "ami.ping_interval": (lambda v: v > 0, "seconds greater than 0"),
    "agi.command_timeout": (lambda v: v > 0, "seconds greater than 0"),
    "simulator.calls_per_minute": (lambda v: v >= 0, "calls per minute, 0 or more"),
    "simulator.unknown_caller_share": (lambda v: 0 <= v <= 1, "a share from 0 to 1"),
    "simulator.talk_limit": (lambda v: v > 0, "seconds greater than 0"),
    "simulator.patience": (lambda v: v > 0, "seconds greater than 0"),
    "routing.ring_timeout": (lambda v: 1 <= v <= 600, "seconds from 1 to 600"),
    "routing.pop_wait": (lambda v: 0 <= v <= 10, "seconds from 0 to 10"),
    "routing.dispositions": (lambda v: len(v) > 0 and all(v), "a non-empty list of names"),
    "web.session_max_age": (lambda v: v >= 60, "seconds, at least 60"),
    "web.redis_url": (lambda v: v == "" or v.startswith(("redis://", "rediss://")), "empty or a redis:// URL"),
    "crm.pop_interactions": (lambda v: 0 <= v <= 50, "a count from 0 to 50"),
    "logging.level": (lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG|INFO|WARNING|ERROR"),
}


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    pbx: PbxSettings = field(default_factory=PbxSettings)
    ami: AmiSettings = field(default_factory=AmiSettings)
    agi: AgiSettings = field(default_factory=AgiSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    web: WebSettings = field(default_factory=WebSettings)
    crm: CrmSettings = field(default_factory=CrmSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Mapping[str, object],
    ) -> Settings:
        """Read the TOML file, apply CC_* variables, then `overrides` (section -> {key: value})."""
        path = Path(path) if path else DEFAULT_CONFIG
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        env = os.environ if env is None else env
        sections = {}
        for section in dataclasses.fields(cls):
            values = dict(raw.pop(section.name, {}))
            values.update(overrides.get(section.name, {}))
            sections[section.name] = _build_section(section.name, section.type, values, env)
        if raw:
            raise ConfigError(f"{next(iter(raw))}: unknown section; allowed: {', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**sections)

    def with_overrides(self, **sections: Mapping[str, object]) -> Settings:
        """A copy with some values replaced (used by `demo` and the tests)."""
        changed = {name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()}
        return dataclasses.replace(self, **changed)


def _build_section(name: str, section_type: str | type, values: dict, env: Mapping[str, str]):
    section_cls = _SECTION_TYPES[name]
    hints = typing.get_type_hints(section_cls)
    known = {f.name for f in dataclasses.fields(section_cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key; allowed: {', '.join(sorted(known))}")
    for key in known:
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            values[key] = env[env_name]
    converted = {key: _convert(f"{name}.{key}", hints[key], value) for key, value in values.items()}
    return section_cls(**converted)


def _convert(key: str, hint: object, value: object) -> object:
    try:
        result = _coerce(hint, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}") from None
    check = _RULES.get(key)
    if check and not check[0](result):
        raise ConfigError(f"{key}: expected {check[1]}, got {value!r}")
    return result


def _coerce(hint: object, value: object) -> object:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if hint is int:
        if isinstance(value, bool) or isinstance(value, float):
            raise TypeError(value)
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError(value)
        return tuple(value)
    raise TypeError(hint)


def _describe(hint: object) -> str:
    if typing.get_origin(hint) is tuple:
        return "a list of strings (comma-separated in the environment)"
    return {bool: "true|false", int: "a whole number", float: "a number", str: "a string"}[hint]


_SECTION_TYPES = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "pbx": PbxSettings,
    "ami": AmiSettings,
    "agi": AgiSettings,
    "simulator": SimulatorSettings,
    "routing": RoutingSettings,
    "web": WebSettings,
    "crm": CrmSettings,
    "logging": LoggingSettings,
}
