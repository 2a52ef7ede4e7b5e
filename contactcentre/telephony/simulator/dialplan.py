"""The dialplan the simulator runs: config/asterisk/extensions.conf itself, parsed.

So the simulator does what a real PBX given that file would do, and a context
added there for the server (cc-hold, say) is exactly what the simulator runs.
Sans I/O: text in, a Dialplan out. Only what a small hand-written file uses is
understood: `[context]`, `exten => pattern,priority,App(data)`, `same =>`,
`n(label)` priorities, `include =>`, `[globals]`, `;` comments, the pattern
characters X Z N [..] . ! and `${VAR}` / `$["a" = "b"]` in application data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "config" / "asterisk" / "extensions.conf"
# Sections of extensions.conf that hold settings, not dialplan.
_SETTINGS_SECTIONS = {"general", "globals"}
_VARIABLE = re.compile(r"\$\{([^${}]*)\}")
_EXPRESSION = re.compile(r"""^\$\[\s*(?P<lhs>"[^"]*"|\S+)\s*(?P<op>!=|=)\s*(?P<rhs>"[^"]*"|\S+)\s*\]$""")
_PRIORITY = re.compile(r"^(?P<priority>\d+|n)(?:\((?P<label>[^)]*)\))?$")


class DialplanError(ValueError):
    """extensions.conf has a line the simulator cannot run; the message names the line."""


@dataclass(frozen=True, slots=True)
class Step:
    priority: int
    label: str | None
    app: str
    data: str


@dataclass(slots=True)
class Extension:
    pattern: str
    steps: dict[int, Step] = field(default_factory=dict)

    def matches(self, exten: str) -> bool:
        return pattern_matches(self.pattern, exten)

    def priority_of(self, label: str) -> int | None:
        return next((s.priority for s in self.steps.values() if s.label == label), None)


@dataclass(slots=True)
class Context:
    name: str
    extensions: list[Extension] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Dialplan:
    contexts: dict[str, Context] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)

    def find(self, context: str, exten: str, _seen: frozenset[str] = frozenset()) -> Extension | None:
        """The extension Asterisk would run: an exact match first, then patterns in file order,
        then the included contexts."""
        ctx = self.contexts.get(context)
        if ctx is None or context in _seen:
            return None
        exact = next((e for e in ctx.extensions if not e.pattern.startswith("_") and e.pattern == exten), None)
        if exact is not None:
            return exact
        pattern = next((e for e in ctx.extensions if e.pattern.startswith("_") and e.matches(exten)), None)
        if pattern is not None:
            return pattern
        for included in ctx.includes:
            found = self.find(included, exten, _seen | {context})
            if found is not None:
                return found
        return None

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        extension = self.find(context, exten)
        return extension.steps.get(priority) if extension is not None else None


def load(path: Path = DEFAULT_PATH) -> Dialplan:
    return parse(path.read_text(encoding="utf-8"), str(path))


def config_lines(text: str, source: str):
    """(file:line, line) for each line of an Asterisk .conf file that has more than a comment."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw).strip()
        if line:
            yield f"{source}:{number}", line


def parse(text: str, source: str = "extensions.conf") -> Dialplan:
    plan = Dialplan()
    section: str | None = None
    current: Extension | None = None
    for where, line in config_lines(text, source):
        if line.startswith("["):
            section = line[1:line.index("]")].strip() if "]" in line else ""
            if not section:
                raise DialplanError(f"{where}: context header without a name")
            current = None
            if section not in _SETTINGS_SECTIONS:
                plan.contexts.setdefault(section, Context(section))
            continue
        if section is None:
            raise DialplanError(f"{where}: line outside any [context]")
        key, arrow, value = line.partition("=>")
        if not arrow:
            key, eq, value = line.partition("=")
            if section == "globals" and eq:
                plan.globals[key.strip()] = value.strip()
            continue  # [general] settings are not the simulator's business
        key, value = key.strip().lower(), value.strip()
        context = plan.contexts[section]
        if key == "include":
            context.includes.append(value)
        elif key == "exten":
            pattern, _, rest = value.partition(",")
            current = next((e for e in context.extensions if e.pattern == pattern.strip()), None)
            if current is None:
                current = Extension(pattern.strip())
                context.extensions.append(current)
            _add_step(current, rest, where)
        elif key == "same":
            if current is None:
                raise DialplanError(f"{where}: 'same =>' without an 'exten =>' before it")
            _add_step(current, value, where)
    return plan


def _add_step(extension: Extension, text: str, where: str) -> None:
    priority_text, _, application = text.partition(",")
    match = _PRIORITY.match(priority_text.strip())
    if match is None:
        if priority_text.strip() == "hint":
            return  # device-state hints are not dialplan steps
        raise DialplanError(f"{where}: priority {priority_text.strip()!r} is not a number or n")
    last = max(extension.steps, default=0)
    priority = last + 1 if match["priority"] == "n" else int(match["priority"])
    app, data = _split_application(application.strip())
    extension.steps[priority] = Step(priority, match["label"], app, data)


def _split_application(text: str) -> tuple[str, str]:
    """`Dial(PJSIP/agent1,20,tT)` -> ("Dial", "PJSIP/agent1,20,tT"); data runs to the last `)`."""
    if "(" not in text:
        return text, ""
    name, _, rest = text.partition("(")
    return name.strip(), rest[:rest.rfind(")")] if ")" in rest else rest


def strip_comment(line: str) -> str:
    """The line up to its `;` comment (`\\;` is a literal semicolon), for every Asterisk .conf file."""
    out = []
    escaped = False
    for char in line:
        if char == ";" and not escaped:
            break
        escaped = char == "\\"
        out.append(char)
    return "".join(out).replace("\\;", ";")


def pattern_matches(pattern: str, exten: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == exten
    return re.fullmatch(_pattern_regex(pattern[1:]), exten) is not None


def _pattern_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            end = pattern.index("]", i)
            out.append(f"[{pattern[i + 1:end]}]")
            i = end + 1
            continue
        out.append({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(char.upper(), re.escape(char)))
        i += 1
    return "".join(out)


def substitute(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand `${NAME}` (innermost first, so `${CALLERID(num)}` inside another works); unknown -> ''."""
    while True:
        expanded = _VARIABLE.sub(lambda m: lookup(m.group(1)) or "", text)
        if expanded == text:
            return expanded
        text = expanded


def evaluate(expression: str) -> bool:
    """`$["SUCCESS" = "FAILURE"]` and friends: the string comparisons our dialplan uses; a bare
    value is true unless it is empty or 0, as in Asterisk."""
    expression = expression.strip()
    match = _EXPRESSION.match(expression)
    if match is None:
        return expression not in ("", "0")
    equal = match["lhs"].strip('"') == match["rhs"].strip('"')
    return equal if match["op"] == "=" else not equal
