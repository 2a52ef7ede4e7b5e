"""queues.conf, parsed: the queues and static members the simulated app_queue starts with.

Sans I/O, like `dialplan.py`: text in, a QueuesConf out. What the shipped file
and ../shared/ami-captures/asterisk-config/pbx/queues.conf use is understood:
`[general]`, `[queue]` sections, templates (`[name](!)` defines one,
`[queue](name)` takes its lines first), `key = value` settings, `member =>`
lines (interface, penalty, member name, state interface) and `;` comments.
Settings the simulator has no use for (announcements, monitor-type...) are
read and ignored, as they change no event a CTI sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from contactcentre.telephony.simulator.dialplan import config_lines

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "config" / "asterisk" / "queues.conf"
STRATEGIES = ("ringall", "rrmemory", "leastrecent")  # what queues.py simulates
_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*(?:\((?P<parents>[^)]*)\))?$")
_TRUE = {"yes", "true", "y", "t", "1", "on"}  # ast_true()


class QueuesConfError(ValueError):
    """queues.conf has a line the simulator cannot use; the message names the line."""


@dataclass(frozen=True, slots=True)
class MemberConf:
    interface: str
    penalty: int = 0
    name: str = ""  # app_queue names the member after its interface when the line gives no name
    state_interface: str = ""

    @property
    def display_name(self) -> str:
        return self.name or self.interface

    @property
    def device(self) -> str:
        """The device whose state the member follows."""
        return self.state_interface or self.interface


@dataclass(frozen=True, slots=True)
class QueueConf:
    """One queue; the defaults are app_queue's own (Asterisk 22)."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15  # seconds a member rings before the next attempt
    retry: int = 5  # seconds between attempts
    wrapuptime: int = 0
    ringinuse: bool = True
    joinempty: bool = True  # `no`: refuse callers while no member can take a call
    maxlen: int = 0
    musicclass: str = "default"
    servicelevel: int = 0
    weight: int = 0
    setinterfacevar: bool = False
    setqueueentryvar: bool = False
    setqueuevar: bool = False
    members: tuple[MemberConf, ...] = ()


@dataclass(frozen=True, slots=True)
class QueuesConf:
    queues: tuple[QueueConf, ...] = ()
    general: dict[str, str] = field(default_factory=dict)

    def _flag(self, key: str, default: bool) -> bool:
        value = self.general.get(key)
        return default if value is None else is_true(value)

    @property
    def autofill(self) -> bool:
        return self._flag("autofill", True)

    @property
    def shared_lastcall(self) -> bool:
        return self._flag("shared_lastcall", True)

    @property
    def log_membername_as_agent(self) -> bool:
        return self._flag("log_membername_as_agent", False)

    def queue(self, name: str) -> QueueConf | None:
        return next((q for q in self.queues if q.name.lower() == name.lower()), None)


def is_true(value: str) -> bool:
    """ast_true(): what Asterisk reads as yes, in config files and in AMI headers alike."""
    return value.strip().lower() in _TRUE


def _strategy(value: str) -> str:
    strategy = value.lower()
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {value!r} is not simulated (only {', '.join(STRATEGIES)})")
    return strategy


# setting -> how its value is read; settings not listed are ignored
_SETTINGS: dict[str, Callable[[str], object]] = {
    "strategy": _strategy, "timeout": int, "retry": int, "wrapuptime": int, "ringinuse": is_true,
    # joinempty also takes lists of conditions (paused,penalty,...): read as "not always", like `no`.
    "joinempty": is_true, "maxlen": int, "musicclass": str, "servicelevel": int, "weight": int,
    "setinterfacevar": is_true, "setqueueentryvar": is_true, "setqueuevar": is_true,
}
_QUEUE_FIELDS = {f.name for f in fields(QueueConf)}
assert set(_SETTINGS) <= _QUEUE_FIELDS


def load(path: Path | str = DEFAULT_PATH) -> QueuesConf:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), str(path))


def parse(text: str, source: str = "queues.conf") -> QueuesConf:
    sections: dict[str, list[tuple[str, str, str]]] = {}  # name -> (key, value, where), templates included
    templates: set[str] = set()
    order: list[str] = []
    current: list[tuple[str, str, str]] | None = None
    for where, line in config_lines(text, source):
        if line.startswith("["):
            current = _open_section(line, where, sections, templates, order)
            continue
        if current is None:
            raise QueuesConfError(f"{where}: line outside any [section]")
        key, arrow, value = line.partition("=>")
        if not arrow:
            key, eq, value = line.partition("=")
            if not eq:
                raise QueuesConfError(f"{where}: expected 'key = value' or 'member => ...', got {line!r}")
        current.append((key.strip().lower(), value.strip(), where))
    general = {key: value for key, value, _ in sections.get("general", [])}
    queues = tuple(_queue(name, sections[name]) for name in order if name != "general" and name not in templates)
    return QueuesConf(queues, general)


def _open_section(line: str, where: str, sections: dict, templates: set[str], order: list[str]) -> list:
    match = _SECTION.match(line)
    if match is None:
        raise QueuesConfError(f"{where}: bad section header {line!r}")
    name = match["name"].strip()
    lines: list[tuple[str, str, str]] = []
    for parent in (p.strip() for p in (match["parents"] or "").split(",") if p.strip()):
        if parent == "!":
            templates.add(name)
        elif parent not in sections:
            raise QueuesConfError(f"{where}: template {parent!r} is not defined above")
        else:
            lines.extend(sections[parent])
    sections[name] = lines
    order.append(name)
    return lines


def _queue(name: str, lines: list[tuple[str, str, str]]) -> QueueConf:
    queue = QueueConf(name)
    members: list[MemberConf] = []
    for key, value, where in lines:
        if key == "member":
            members.append(_member(value, where))
            continue
        reader = _SETTINGS.get(key)
        if reader is None:
            continue
        try:
            queue = replace(queue, **{key: reader(value)})
        except ValueError as exc:
            raise QueuesConfError(f"{where}: {key}: {exc}") from None
    return replace(queue, members=tuple(members))


def _member(value: str, where: str) -> MemberConf:
    """`interface,penalty,member name,state interface`: only the interface is required."""
    parts = [p.strip() for p in value.split(",")]
    if not parts[0] or "/" not in parts[0]:
        raise QueuesConfError(f"{where}: member needs an interface such as PJSIP/agent1, got {value!r}")
    penalty = parts[1] if len(parts) > 1 and parts[1] else "0"
    if not penalty.lstrip("-").isdigit():
        raise QueuesConfError(f"{where}: member penalty {penalty!r} is not a number")
    return MemberConf(parts[0], max(int(penalty), 0), parts[2] if len(parts) > 2 else "",
                      parts[3] if len(parts) > 3 else "")
