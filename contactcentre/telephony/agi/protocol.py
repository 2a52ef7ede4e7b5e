"""FastAGI wire format, sans I/O.

Asterisk opens the connection and sends `agi_key: value` lines ended by an
empty line; then the server writes one command line at a time and Asterisk
answers `200 result=N (data) endpos=M`, `510 Invalid or unknown command`,
`511 Command Not Permitted on a dead channel or intercept routine`, or a
multi-line `520-` usage block ended by `520 End of proper usage.`. After the
caller hangs up it may send an unsolicited `HANGUP` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Asterisk's environment has about 25 lines of under 100 bytes; the caps stop
# a garbage peer from holding memory while keeping room for long caller names.
MAX_LINE_BYTES = 8192
MAX_ENV_LINES = 128
HANGUP_NOTICE = "HANGUP"

# GET DATA answers with the keys collected, which need not be a number: `result=*`, `result=0123`.
_RESULT = re.compile(
    r"^200 result=(?P<result>-?\d+|[0-9*#A-D]*)(?: \((?P<data>.*?)\))?(?: endpos=(?P<endpos>\d+))?\s*$")


class AgiProtocolError(Exception):
    """The peer sent something that is not FastAGI."""


class AgiCommandError(Exception):
    """Asterisk refused a command (510, 511, 520)."""

    def __init__(self, command: str, code: int, message: str):
        super().__init__(f"{command!r}: {code} {message}")
        self.command = command
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AgiResult:
    result: int | None  # None when `result=` holds no number (GET DATA timed out, or collected `*`)
    data: str | None = None
    endpos: int | None = None
    text: str = field(default="", compare=False)  # the result as sent: keys keep their leading 0 and their *

    @property
    def digits(self) -> str:
        """What GET DATA collected: the keys as pressed, empty on timeout or hangup (-1)."""
        return "" if self.text.startswith("-") else self.text


def parse_env_line(line: str) -> tuple[str, str]:
    key, sep, value = line.partition(":")
    if not sep or not key.startswith("agi_"):
        raise AgiProtocolError(f"expected an agi_* environment line, got {line[:80]!r}")
    return key, value[1:] if value.startswith(" ") else value


def parse_result(line: str) -> AgiResult:
    match = _RESULT.match(line)
    if not match:
        raise AgiProtocolError(f"expected '200 result=...', got {line[:80]!r}")
    raw = match["result"]
    endpos = match["endpos"]
    try:
        number = int(raw) if raw.lstrip("-").isdigit() else None
        position = int(endpos) if endpos else None
    except ValueError:  # int() reads at most 4,300 digits of text; no number Asterisk sends comes near
        raise AgiProtocolError(f"a number too long to read in {line[:80]!r}") from None
    return AgiResult(number, match["data"], position, raw)


def quote(arg: object) -> str:
    """One AGI argument, quoted as Asterisk's parser expects."""
    text = str(arg)
    if text and not any(c in text for c in ' "\\\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(*parts: object) -> bytes:
    line = " ".join(str(parts[0]).split()) if parts else ""
    args = " ".join(quote(p) for p in parts[1:])
    text = f"{line} {args}".rstrip() if args else line
    if "\n" in text or "\r" in text:
        raise ValueError("an AGI command must be one line")
    return (text + "\n").encode()
