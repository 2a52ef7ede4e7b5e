"""AMI wire format, sans I/O: bytes in, messages out, no socket.

Asterisk sends a banner line (`Asterisk Call Manager/11.0.0\\r\\n`) alone, then
messages of `Key: Value\\r\\n` lines, each ended by an empty line. Values may be
empty and keys may repeat (`Output:` of Command, `ChanVariable`), so headers
are kept as an ordered list of pairs, never a dict alone.

Writing uses the asterisk-ami package's Action classes (see `encode_action`).
Reading uses this parser, not the package's `Event.read`: that one splits
lines with str.splitlines(), so a caller name holding U+2028 becomes a forged
header line, and it keeps only the last of a repeated header and drops a bare
`Key:` (bench/ami_ingest.py shows each).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from asterisk.ami import Action

# A message larger than this is cut: a real Asterisk message is a few KiB,
# the largest seen in the captures (Command output) under 4 KiB. 1 MiB leaves
# room for a huge `Command` output while bounding what a broken peer costs us.
MAX_MESSAGE_BYTES = 1024 * 1024
ENCODING = "utf-8"
_TERMINATOR = b"\r\n\r\n"


class AmiMessage:
    """One AMI message: an event, a response, or the banner.

    Only the first line is read when the message arrives; the other headers
    are split on first use, because most events (VarSet, RTCP ...) are never
    looked into (bench/ami_ingest.py measures the difference).
    """

    __slots__ = ("kind", "name", "_text", "_headers", "_exact", "_lower")

    def __init__(self, kind: str, name: str, headers: list[tuple[str, str]] | None = None, text: str = ""):
        self.kind = kind  # "event" | "response" | "action" | "banner" | "unknown"
        self.name = name  # event name, response status, or banner text
        self._text = text
        self._headers = headers
        self._exact: dict[str, str] | None = None
        self._lower: dict[str, str] | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self._headers is None:
            self._headers = _split_headers(self._text)
        return self._headers

    def fields(self) -> dict[str, str]:
        """Header -> first value, under Asterisk's own spelling of each header."""
        if self._exact is None:
            self._exact = dict(reversed(self.headers))  # reversed: the first of a repeated header wins
        return self._exact

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of `key`; Asterisk's spelling is tried first, then any case."""
        value = self.fields().get(key)
        if value is not None:
            return value
        if self._lower is None:
            lower: dict[str, str] = {}
            for k, v in self.headers:
                lower.setdefault(k.lower(), v)
            self._lower = lower
        return self._lower.get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self.headers if k.lower() == key]

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def __repr__(self) -> str:
        return f"AmiMessage({self.kind}, {self.name!r})"


def _split_headers(text: str) -> list[tuple[str, str]]:
    # Asterisk writes every header as `Key: Value`, so one split per line in C does
    # nearly all messages; a line in another form sends the message the slow way.
    pairs = [line.split(": ", 1) for line in text.split("\r\n")]
    if min(map(len, pairs)) == 2:
        return list(map(tuple, pairs))
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep:
            if line:
                headers.append(("", line))  # a stray line is kept, not lost
            continue
        headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return headers


_KINDS = {"event": "event", "response": "response", "action": "action"}


def parse_message(text: str) -> AmiMessage:
    """Turn the text of one message (without its blank line) into an AmiMessage."""
    first = text.partition("\r\n")[0]
    key, sep, value = first.partition(":")
    kind = _KINDS.get(key.strip().lower()) if sep else None
    if kind is None:
        return AmiMessage("unknown", "", text=text)
    return AmiMessage(kind, value[1:] if value.startswith(" ") else value, text=text)


class AmiParser:
    """Feed it bytes as they arrive; it returns complete messages.

    Counts what it had to cut or could not read, so a broken peer shows up in
    the metrics instead of crashing the reader.
    """

    def __init__(self, expect_banner: bool = True):
        self._buf = b""
        self._expect_banner = expect_banner
        self.oversized = 0
        self.undecodable = 0
        self.skipped: Counter[bytes] = Counter()  # events left unparsed by `only`, by name

    def feed(self, data: bytes, only: frozenset[bytes] | None = None) -> list[AmiMessage]:
        """The complete messages in what has arrived so far.

        `only`: event names (as bytes) worth parsing; any other event is counted
        in `skipped` and dropped unparsed, which is most of an Asterisk stream.
        """
        buf = self._buf + data if self._buf else data
        out: list[AmiMessage] = []
        if self._expect_banner:
            end = buf.find(b"\r\n")
            if end < 0:
                self._buf = self._cap(buf)
                return out
            out.append(AmiMessage("banner", self._decode(buf[:end]), []))
            buf = buf[end + 2 :]
            self._expect_banner = False
        parts = buf.split(_TERMINATOR)
        rest = parts.pop()
        for part in parts:
            if len(part) > MAX_MESSAGE_BYTES:
                self.oversized += 1
                part = part[:MAX_MESSAGE_BYTES]
            if part.startswith(b"\r\n"):
                part = part.lstrip(b"\r\n")  # stray blank lines between messages
            if only is not None and part.startswith(b"Event: "):
                name = part[7:part.find(b"\r\n")] if b"\r\n" in part else part[7:]
                if name not in only:
                    self.skipped[name] += 1
                    continue
            if part:
                out.append(parse_message(self._decode(part)))
        self._buf = self._cap(rest)
        return out

    def pending(self) -> bool:
        """True when bytes of an unfinished message are held."""
        return bool(self._buf.strip())

    def _cap(self, rest: bytes) -> bytes:
        if len(rest) <= MAX_MESSAGE_BYTES:
            return rest
        # No terminator within the limit: drop what we hold and count it, so
        # one endless message cannot take the server's memory.
        self.oversized += 1
        return b""

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode(ENCODING)
        except UnicodeDecodeError:
            self.undecodable += 1
            return raw.decode(ENCODING, errors="replace")


def iter_messages(data: bytes, expect_banner: bool = True) -> Iterator[AmiMessage]:
    """Every message of a whole capture, as the reader would see it."""
    parser = AmiParser(expect_banner=expect_banner)
    yield from parser.feed(data)
    yield from parser.feed(b"\r\n\r\n") if parser.pending() else ()


def encode_action(name: str, action_id: str, keys: Mapping[str, object] | None = None,
                  variables: Mapping[str, object] | None = None) -> bytes:
    """The wire bytes of an action, written by asterisk-ami's Action class."""
    action = Action(name, keys={"ActionID": action_id, **(keys or {})}, variables=dict(variables or {}))
    return (str(action) + "\r\n").encode(ENCODING)


def encode_message(first: tuple[str, str], headers: list[tuple[str, str]] | Mapping[str, str]) -> bytes:
    """The wire bytes of an event or response (the simulator's side of the wire)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = [f"{first[0]}: {first[1]}"]
    lines.extend(f"{k}: {v}" for k, v in items)
    return ("\r\n".join(lines) + "\r\n\r\n").encode(ENCODING)
