"""Simulated bridges: who hears whom, and the Bridge* events Asterisk 22 sends as that changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from contactcentre.telephony.simulator.channels import SimChannel, bridge_headers

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx


class SimBridge:
    """A basic two-party (or, during a transfer, briefly larger) bridge."""

    def __init__(self, pbx: SimulatedPbx, bridge_id: str):
        self.pbx = pbx
        self.id = bridge_id
        self.channels: list[SimChannel] = []
        self.destroyed = False
        # Told of each channel that leaves, right after its BridgeLeave and before the bridge dissolves:
        # app_queue's AgentComplete comes between the member's BridgeLeave and the caller's.
        self.on_leave: Callable[[SimChannel], None] | None = None

    def headers(self, prefix: str = "") -> list[tuple[str, str]]:
        return bridge_headers(self.id, len(self.channels), prefix)

    def others(self, channel: SimChannel) -> list[SimChannel]:
        return [c for c in self.channels if c is not channel]

    def enter(self, channel: SimChannel, swap: SimChannel | None = None) -> None:
        """`swap` is the channel this one replaces (a Local pair optimising away): BridgeEnter says so."""
        self.channels.append(channel)
        channel.bridge = self
        channel.left_bridge.clear()
        extra = [("SwapUniqueid", swap.uniqueid)] if swap is not None else []
        self.pbx.emit("BridgeEnter", [*self.headers(), *channel.headers(), *extra])
        self._set_peers()
        self.pbx.note_bridge(self)

    def leave(self, channel: SimChannel) -> None:
        if channel not in self.channels:
            return
        self.channels.remove(channel)
        channel.bridge = None
        self.pbx.emit("BridgeLeave", [*self.headers(), *channel.headers()])
        self._set_peer(channel, "")
        self._set_peers()
        channel.left_bridge.set()
        if self.on_leave is not None:
            self.on_leave(channel)

    def _set_peers(self) -> None:
        """BRIDGEPEER names the other parties, as Asterisk's bridging sets it (Getvar reads it)."""
        for channel in self.channels:
            self._set_peer(channel, ",".join(c.name for c in self.others(channel)))

    def _set_peer(self, channel: SimChannel, peers: str) -> None:
        if channel.variables.get("BRIDGEPEER", "") != peers and not channel.destroyed:
            self.pbx.set_variable(channel, "BRIDGEPEER", peers)

    def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        self.pbx.bridges.pop(self.id, None)
        self.pbx.emit("BridgeDestroy", self.headers())

    def dissolve(self) -> list[SimChannel]:
        """Everyone left is pushed out and the bridge goes: what a basic bridge does once a party
        hangs up or is redirected away (transfers-hold call 2). Returns who was pushed out."""
        kicked = list(self.channels)
        for channel in kicked:
            self.leave(channel)
        self.destroy()
        return kicked
