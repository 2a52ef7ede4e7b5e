"""Settings: config/contactcentre.toml, then CC_* environment variables.

Loaded once at start-up into frozen dataclasses. A wrong value stops start-up
with one ConfigError line naming the key, the value and what is allowed.
Nothing else in the package reads os.environ.
"""

from __future__ import annotations

import dataclasses
import os
import re
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
    max_talk: float = 14400.0
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
    offers: str = "offers.yaml"  # the pop's offer rules; a relative path is in the config/ directory

    @property
    def offers_path(self) -> Path:
        return DEFAULT_CONFIG.parent / self.offers


@dataclass(frozen=True)
class OutboundSettings:
    caller_id: str = '"Contact centre" <+441632960000>'
    customer_ring_timeout: int = 30
    recent_contact_days: int = 7


@dataclass(frozen=True)
class CallbackSettings:
    max_attempts: int = 3
    retry_after: float = 900.0
    poll_interval: float = 5.0


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"


@dataclass(frozen=True)
class SurveyQuestion:
    """One question of the post-call survey: a prompt, answered with one key from lowest to highest."""

    key: str  # what the answer is stored under (SurveyResponse.question), e.g. "agent"
    prompt: str  # the sound file that asks it, e.g. "custom/survey-agent"
    lowest: int = 1
    highest: int = 5


@dataclass(frozen=True)
class SurveySettings:
    """The post-call survey: its prompts (Asterisk sound files) and questions, as data."""

    enabled: bool = True
    answer_timeout: float = 5.0  # seconds for the key after each question's prompt
    intro: str = "custom/survey-intro"
    retry: str = "custom/survey-invalid"  # played before a question is asked the second time
    goodbye: str = "custom/survey-thanks"
    questions: tuple[SurveyQuestion, ...] = (SurveyQuestion("agent", "custom/survey-agent", 1, 5),
                                             SurveyQuestion("solved", "custom/survey-solved", 1, 2))


# A sound file as Asterisk names it: relative to its sounds directory, no extension, nothing to quote.
_SOUND = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}")
_SOUND_RULE = "a sound file name such as custom/survey-intro (letters, digits, _ . / -)"
_QUESTION_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")

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
    "routing.max_talk": (lambda v: 60 <= v <= 86400, "seconds from 60 to 86400"),
    "routing.dispositions": (lambda v: len(v) > 0 and all(v), "a non-empty list of names"),
    "web.session_max_age": (lambda v: v >= 60, "seconds, at least 60"),
    "web.redis_url": (lambda v: v == "" or v.startswith(("redis://", "rediss://")), "empty or a redis:// URL"),
    "crm.pop_interactions": (lambda v: 0 <= v <= 50, "a count from 0 to 50"),
    "crm.offers": (lambda v: v.endswith((".yaml", ".yml")), "a .yaml file"),
    "outbound.caller_id": (lambda v: re.fullmatch(r'("[^"<>]*" )?<\+?[0-9]{3,20}>', v) is not None,
                           '"Name" <number>, the number in digits with an optional +'),
    "outbound.customer_ring_timeout": (lambda v: 5 <= v <= 120, "seconds from 5 to 120"),
    "outbound.recent_contact_days": (lambda v: 0 <= v <= 365, "days from 0 to 365"),
    "callbacks.max_attempts": (lambda v: 1 <= v <= 10, "a count from 1 to 10"),
    "callbacks.retry_after": (lambda v: v >= 1, "seconds, at least 1"),
    "callbacks.poll_interval": (lambda v: 0 < v <= 300, "seconds greater than 0, at most 300"),
    "logging.level": (lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG|INFO|WARNING|ERROR"),
    "survey.answer_timeout": (lambda v: 0.1 <= v <= 60, "seconds from 0.1 to 60"),
    "survey.intro": (lambda v: _SOUND.fullmatch(v) is not None, _SOUND_RULE),
    "survey.retry": (lambda v: _SOUND.fullmatch(v) is not None, _SOUND_RULE),
    "survey.goodbye": (lambda v: _SOUND.fullmatch(v) is not None, _SOUND_RULE),
    "survey.questions": (lambda v: len(v) > 0 and len({q.key for q in v}) == len(v),
                         "at least one question, each key used once"),
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
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    survey: SurveySettings = field(default_factory=SurveySettings)

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
    except ConfigError:
        raise  # already names the part of the value that is wrong
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
    if hint == tuple[SurveyQuestion, ...]:
        return _questions(value)
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError(value)
        return tuple(value)
    raise TypeError(hint)


def _questions(value: object) -> tuple[SurveyQuestion, ...]:
    """[[survey.questions]] tables; a wrong one is named by its place in the list and its key."""
    if isinstance(value, tuple) and all(isinstance(q, SurveyQuestion) for q in value):
        return value  # already built (the defaults, with_overrides)
    if not isinstance(value, list) or not all(isinstance(q, dict) for q in value):
        raise TypeError(value)
    return tuple(_question(n, table) for n, table in enumerate(value, start=1))


def _question(n: int, table: dict) -> SurveyQuestion:
    where = f"survey.questions[{n}]"
    known = {f.name for f in dataclasses.fields(SurveyQuestion)}
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key; allowed: {', '.join(sorted(known))}")
    for key in ("key", "prompt"):
        if not isinstance(table.get(key), str):
            raise ConfigError(f"{where}.{key}: expected a string, got {table.get(key)!r}")
    if not _QUESTION_KEY.fullmatch(table["key"]):
        raise ConfigError(f"{where}.key: expected lower-case letters, digits and _ (at most 64), "
                          f"got {table['key']!r}")
    if not _SOUND.fullmatch(table["prompt"]):
        raise ConfigError(f"{where}.prompt: expected {_SOUND_RULE}, got {table['prompt']!r}")
    question = SurveyQuestion(table["key"], table["prompt"], table.get("lowest", 1), table.get("highest", 5))
    for name in ("lowest", "highest"):
        value = getattr(question, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 9:
            raise ConfigError(f"{where}.{name}: expected one key, a whole number from 0 to 9, got {value!r}")
    if question.lowest >= question.highest:
        raise ConfigError(f"{where}: expected lowest below highest, got {question.lowest}..{question.highest}")
    return question


def _describe(hint: object) -> str:
    if hint == tuple[SurveyQuestion, ...]:
        return "a list of [[survey.questions]] tables with key, prompt, lowest and highest"
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
    "outbound": OutboundSettings,
    "callbacks": CallbackSettings,
    "logging": LoggingSettings,
    "survey": SurveySettings,
}
