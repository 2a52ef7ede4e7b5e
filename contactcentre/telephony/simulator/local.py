"""Local channel pairs (chan_local): `Local/2003@xfer-00000000;1` and `;2`.

;2 runs the dialplan at exten@context; ;1 is what the one who asked for the
pair holds (an attended transfer's consultation bridge, an Originate). What
happens on ;2 shows on ;1 as it does in transfers-hold.ami call 3: when ;2's
Dial() rings someone, ;1 rings too and takes their caller ID; when they
answer, ;1 is answered. chan_local numbers its pairs with its own counter,
apart from chan_pjsip's channels (the first pair is 00000000 in both
captures that have one).

Who dialled ;1 decides how its ringing and answer show (`dialler`): a bridge
feature (the attended transfer) sends DialState/DialEnd naming no calling
channel; app_queue, which rings `Local/2001@agents/n` members, names the
caller and sends its own DialEnd (`queue_calls.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from contactcentre.telephony.simulator.channels import DOWN, RING, RINGING, UP, SimChannel

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

CALLING_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")


class LocalDialler(Protocol):
    def ringing(self, pair: LocalPair) -> None: ...

    def dial_end(self, pair: LocalPair) -> None: ...


class FeatureDial:
    """;1 dialled by a bridge feature (an attended transfer's consultation): no Dial() waits on it, so its
    DialState and DialEnd name no calling channel (transfers-hold.ami call 3)."""

    def ringing(self, pair: LocalPair) -> None:
        pair.pbx.channel_event("NewCallerid", pair.one, CALLING_PRES)
        pair.pbx.emit("DialState", [*pair.one.headers("Dest"), ("DialStatus", "RINGING")])

    def dial_end(self, pair: LocalPair) -> None:
        pair.pbx.emit("DialEnd", [*pair.one.headers("Dest"), ("DialStatus", "ANSWER")])


class LocalPair:
    def __init__(self, pbx: SimulatedPbx, exten: str, context: str, linkedid: str | None = None):
        self.pbx = pbx
        self.exten = exten
        self.context = context
        base = f"Local/{exten}@{context}-{pbx.next_local_number():08x}"
        self.one = pbx.new_channel(f"{base};1", "", "", context, exten, state=DOWN, linkedid=linkedid, named=True)
        self.two = pbx.new_channel(f"{base};2", "", "", context, exten, state=RING,
                                   linkedid=linkedid or self.one.uniqueid, named=True)
        for half in (self.one, self.two):
            half.local = self
            half.owned = True
        self.on_two_gone: Callable[[], None] | None = None  # what the owner of ;1 does when ;2 ends
        self.dialler: LocalDialler = FeatureDial()

    @property
    def device(self) -> str:
        return f"Local/{self.exten}@{self.context}"

    def headers(self) -> list[tuple[str, str]]:
        return [*self.one.headers("LocalOne"), *self.two.headers("LocalTwo")]

    def set_caller_id(self, channel: SimChannel, number: str, name: str) -> None:
        channel.caller_num, channel.caller_name = number, name
        self.pbx.channel_event("NewCallerid", channel, CALLING_PRES)

    # -- ;2's Dial() shows on ;1 ------------------------------------------------

    def mirror_connected_line(self) -> None:
        """Whoever ;2 now calls is who ;1's bridge peers are connected to."""
        if self.one.bridge is None:
            return
        for peer in self.one.bridge.others(self.one):
            peer.connected_num, peer.connected_name = self.two.connected_num, self.two.connected_name
            self.pbx.channel_event("NewConnectedLine", peer)

    def mirror_ringing(self, callee: SimChannel) -> None:
        self.one.caller_num, self.one.caller_name = callee.caller_num, callee.caller_name
        self.pbx.set_state(self.one, RINGING)
        self.dialler.ringing(self)

    def mirror_answer(self) -> None:
        self.pbx.set_state(self.one, UP)
        self.one.answered.set()

    def mirror_dial_end(self) -> None:
        self.dialler.dial_end(self)

    def gone(self, half: SimChannel) -> None:
        """One half hung up: the other goes too, unless whoever holds ;1 deals with ;2 ending."""
        if half is self.two and self.on_two_gone is not None:
            callback, self.on_two_gone = self.on_two_gone, None
            callback()
            return
        other = self.one if half is self.two else self.two
        if not other.destroyed:  # with the cause of the half that went (26 when a queue rang elsewhere)
            self.pbx.request_hangup(other, half.hangup_cause if half.hangup_cause is not None else 16)
