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

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping

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
        """The first value of `key`; Asterisk's spelling is tried first, then any case.

        While the message is only text, a header written as Asterisk writes it
        (`\\r\\nKey: value`) is found in the text without splitting it: a
        decoder reads a handful of an event's twenty-odd headers, and splitting
        them all costs more than the rest of decoding (bench/ami_ingest.py).
        Not found so does not prove the header absent (another spelling, no
        space after the colon): then the message is split and looked at again.
        """
        if self._headers is None:
            # partition, not find and slice: a one-argument method is the cheaper call (bench/ami_ingest.py)
            text = self._text
            _, found, rest = text.partition(_NEEDLES.get(key) or _needle(key))
            if found:
                return rest.partition("\r\n")[0]
            if key.lower() not in text.lower():
                return default  # not there in any spelling: no need to split the message
        value = self.fields().get(key)
        if value is not None:
            return value
        if self._lower is None:
            lower: dict[str, str] = {}
            for k, v in self.headers:
                lower.setdefault(k.lower(), v)
            self._lower = lower
        return self._lower.get(key.lower(), default)

    @property
    def text(self) -> str:
        """The message as it arrived, lines joined by `\\r\\n`; empty for one built from headers."""
        return self._text

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


_NEEDLES: dict[str, str] = {}  # header name -> how its line starts, for AmiMessage.get


def _needle(key: str) -> str:
    if len(_NEEDLES) > 1024:  # header names come from our own code, but keep it bounded anyway
        _NEEDLES.clear()
    needle = _NEEDLES[key] = "\r\n" + key + ": "
    return needle


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

    The bytes held between feeds always start with the terminator of the
    message before them (or stand in for one at the start), so every message
    begins right after a `\\r\\n\\r\\n`: one regular expression can then pick
    the wanted messages out of a whole read in C (see `feed`).
    """

    def __init__(self, expect_banner: bool = True, on_new_kind: Callable[[str, str], None] | None = None):
        self._buf = b"" if expect_banner else _TERMINATOR
        self._expect_banner = expect_banner
        self.oversized = 0
        self.undecodable = 0
        self.skipped: Counter[bytes] = Counter()  # events of no known kind left unparsed, by name
        # Called with (name, text) for the first event of each kind left unparsed: that one is kept whole.
        self.on_new_kind = on_new_kind

    def feed(self, data: bytes, wanted: EventFilter | None = None) -> list[AmiMessage]:
        """The complete messages in what has arrived so far.

        `wanted`: which events to parse (see EventFilter); without it, every
        message is. Messages that are not events (responses, garbage) are
        always returned.
        """
        buf = self._buf + data
        out: list[AmiMessage] = []
        if self._expect_banner:
            end = buf.find(b"\r\n")
            if end < 0:
                self._buf = self._cap(buf, b"")
                return out
            out.append(AmiMessage("banner", self._decode(buf[:end]), []))
            buf = _TERMINATOR + buf[end + 2:]
            self._expect_banner = False
        end = buf.rfind(_TERMINATOR)  # 0 at least: buf starts with one
        if end > 0:
            if wanted is None:
                self._parse_all(buf, end, out)
            else:
                self._parse_wanted(buf, end, wanted, out)
        self._buf = self._cap(buf[end:], _TERMINATOR)
        return out

    def _parse_all(self, buf: bytes, end: int, out: list[AmiMessage]) -> None:
        for part in buf[4:end].split(_TERMINATOR):
            while part.startswith(b"\r\n"):
                part = part[2:]  # stray blank lines between messages
            if part:
                out.append(parse_message(self._decode(self._limit(part))))

    def _parse_wanted(self, buf: bytes, end: int, wanted: EventFilter, out: list[AmiMessage]) -> None:
        parse, names, unknown = wanted.parse, wanted.names, []
        # `end + 2`: a one-line message's name ends in the first half of the last terminator.
        for match in wanted.starts.finditer(buf, 0, end + 2):
            name = match[2]
            if name is not None and name not in parse:
                unknown.append(name)
                continue
            start = match.start(1)
            stop = buf.find(_TERMINATOR, start)
            if stop <= start:
                continue  # only blank lines after the last terminator: nothing to read
            raw = buf[start:stop] if stop - start <= MAX_MESSAGE_BYTES else self._limit(buf[start:stop])
            try:
                text = raw.decode()  # ENCODING, UTF-8: the default, and the argument-free call is cheaper
            except UnicodeDecodeError:
                text = self._decode(raw)
            out.append(parse_message(text) if name is None else AmiMessage("event", names[name], None, text))
        if unknown:
            kinds = len(self.skipped)
            self.skipped.update(unknown)
            if len(self.skipped) > kinds and self.on_new_kind is not None:  # a kind not seen before: rare
                for name in dict.fromkeys(unknown):
                    if self.skipped[name] == unknown.count(name):  # all of its count came in this read
                        self._first_of_kind(buf, name)

    def _first_of_kind(self, buf: bytes, name: bytes) -> None:
        start = buf.find(b"\r\n\r\nEvent: " + name + b"\r\n")
        if start < 0:
            return  # written with stray blank lines before it: counted all the same
        stop = buf.find(_TERMINATOR, start + 4)
        self.on_new_kind(self._decode(name), self._decode(self._limit(buf[start + 4:stop])))

    def pending(self) -> bool:
        """True when bytes of an unfinished message are held."""
        return bool(self._buf.strip())

    def _limit(self, part: bytes) -> bytes:
        if len(part) <= MAX_MESSAGE_BYTES:
            return part
        self.oversized += 1
        return part[:MAX_MESSAGE_BYTES]

    def _cap(self, rest: bytes, empty: bytes) -> bytes:
        if len(rest) <= MAX_MESSAGE_BYTES:
            return rest
        # No terminator within the limit: drop what we hold and count it, so
        # one endless message cannot take the server's memory.
        self.oversized += 1
        return empty

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode(ENCODING)
        except UnicodeDecodeError:
            self.undecodable += 1
            return raw.decode(ENCODING, errors="replace")


class EventFilter:
    """Which events a reader parses, which it drops unseen, and which it counts.

    `parse`: events handed on, parsed. `ignore`: events dropped without a look
    and without a count (events we model but nobody here reads: VarSet alone is
    half of what Asterisk sends). Any other event is one we have no model of:
    dropped unparsed, but counted by name in AmiParser.skipped.

    `starts` finds, in C, each message start (after a terminator and any
    stray blank lines; `*+` so it cannot back off into them) that is not an
    ignored event; group 1 is the message, group 2 its event name, or None for
    a message that is not an event. Skipping the ignored events there, and not
    in a Python loop, is most of what bench/ami_ingest.py measures.
    """

    __slots__ = ("parse", "ignore", "names", "starts")

    def __init__(self, parse: Iterable[str], ignore: Iterable[str]):
        self.parse = frozenset(name.encode(ENCODING) for name in parse)
        self.ignore = frozenset(name.encode(ENCODING) for name in ignore) - self.parse
        self.names = {name: name.decode(ENCODING) for name in self.parse}
        ignored = _alternation(self.ignore) if self.ignore else b"(?!)"
        self.starts = re.compile(rb"\r\n\r\n(?:\r\n)*+((?!Event: " + ignored + rb"\r\n)(?:Event: ([^\r\n]*))?)")


def _alternation(names: Iterable[bytes]) -> bytes:
    """A pattern matching exactly these names, as a tree on their letters: `New(?:exten|state)`.

    The regular expression engine tries a flat `a|b|c` one name after another at every message
    start; the tree decides on a letter or two (bench/ami_ingest.py: the scan 10% faster).
    """
    groups: dict[bytes, set[bytes]] = {}
    for name in names:
        groups.setdefault(name[:1], set()).add(name[1:])
    branches = []
    for first, rests in sorted(groups.items()):
        tails = {rest for rest in rests if rest}
        tail = _alternation(tails) if tails else b""
        if tail and b"" in rests:
            tail = b"(?:" + tail + b")?"  # one name is a prefix of another
        branches.append(re.escape(first) + tail)
    return branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"


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
