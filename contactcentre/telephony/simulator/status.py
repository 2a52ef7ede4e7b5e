"""AMI actions that describe what exists: CoreShowChannels, BridgeList, BridgeInfo, Status, Getvar, Setvar.

List actions answer as in ../shared/ami-captures/resync.ami: `Response: Success`
with `EventList: start`, the item events (named differently from the action)
to the asking session only, then `...Complete`. Header order follows the
capture too: CoreShowChannel and BridgeListItem put ActionID first, Status
puts it last and says `Privilege: Call`, and StatusComplete carries both
ListItems and Items.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator.ami_server import ActionHandler, AmiSession
from contactcentre.telephony.simulator.channels import SimChannel

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx


def _action_id(action: AmiMessage) -> list[tuple[str, str]]:
    return [("ActionID", action["ActionID"])] if action.get("ActionID") is not None else []


def _duration(channel: SimChannel) -> str:
    seconds = int(time.time() - channel.created)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class StatusActions:
    def __init__(self, pbx: SimulatedPbx):
        self.pbx = pbx

    def handlers(self) -> dict[str, ActionHandler]:
        return {"CoreShowChannels": self.core_show_channels, "BridgeList": self.bridge_list,
                "BridgeInfo": self.bridge_info, "Status": self.status, "Getvar": self.getvar, "Setvar": self.setvar}

    async def core_show_channels(self, session: AmiSession, action: AmiMessage) -> None:
        session.respond(action, "Success", [("EventList", "start"), ("Message", "Channels will follow")])
        channels = list(self.pbx.channels.values())
        for channel in channels:
            session.send(("Event", "CoreShowChannel"), [
                *_action_id(action), *channel.headers(), ("Application", channel.application),
                ("ApplicationData", channel.application_data), ("Duration", _duration(channel)),
                ("BridgeId", channel.bridge_id)])
        session.send(("Event", "CoreShowChannelsComplete"), [
            *_action_id(action), ("EventList", "Complete"), ("ListItems", str(len(channels)))])

    async def bridge_list(self, session: AmiSession, action: AmiMessage) -> None:
        wanted = action.get("BridgeType") or ""
        bridges = sorted((b for b in self.pbx.bridges.values() if wanted in ("", "basic")), key=lambda b: b.id)
        session.respond(action, "Success", [("EventList", "start"), ("Message", "Bridge listing will follow")])
        for bridge in bridges:
            session.send(("Event", "BridgeListItem"), [*_action_id(action), *bridge.headers()])
        session.send(("Event", "BridgeListComplete"), [
            *_action_id(action), ("EventList", "Complete"), ("ListItems", str(len(bridges)))])

    async def bridge_info(self, session: AmiSession, action: AmiMessage) -> None:
        bridge_id = action.get("BridgeUniqueid") or ""
        if not bridge_id:
            session.respond(action, "Error", [("Message", "BridgeUniqueid must be provided")])
            return
        bridge = self.pbx.bridges.get(bridge_id)
        if bridge is None:
            session.respond(action, "Error", [("Message", "Specified BridgeUniqueid not found")])
            return
        session.respond(action, "Success", [("EventList", "start"),
                                            ("Message", "Bridge channel listing will follow")])
        for channel in bridge.channels:
            session.send(("Event", "BridgeInfoChannel"), [*channel.headers(), *_action_id(action)])
        session.send(("Event", "BridgeInfoComplete"), [
            *_action_id(action), ("EventList", "Complete"), ("ListItems", str(len(bridge.channels))),
            *bridge.headers()])

    async def status(self, session: AmiSession, action: AmiMessage) -> None:
        name = action.get("Channel") or ""
        if name:
            channel = self.pbx.channels.get(name)
            if channel is None:
                session.respond(action, "Error", [("Message", "No such channel")])
                return
            channels = [channel]
        else:
            channels = list(self.pbx.channels.values())
        session.respond(action, "Success", [("EventList", "start"), ("Message", "Channel status will follow")])
        for channel in channels:
            session.send(("Event", "Status"), [("Privilege", "Call"), *self._status_item(channel),
                                               *_action_id(action)])
        count = str(len(channels))
        session.send(("Event", "StatusComplete"), [*_action_id(action), ("EventList", "Complete"),
                                                   ("ListItems", count), ("Items", count)])

    @staticmethod
    def _status_item(channel: SimChannel) -> list[tuple[str, str]]:
        music = channel.moh_class is not None  # music is played as slin and transcoded to the line's ulaw
        return [*channel.headers(), ("Type", channel.name.partition("/")[0]), ("DNID", channel.dnid),
                ("EffectiveConnectedLineNum", channel.connected_num),
                ("EffectiveConnectedLineName", channel.connected_name), ("TimeToHangup", "0"),
                ("BridgeID", channel.bridge_id), ("Application", channel.application),
                ("Data", channel.application_data), ("Nativeformats", "(ulaw)"), ("Readformat", "ulaw"),
                ("Readtrans", ""), ("Writeformat", "slin" if music else "ulaw"),
                ("Writetrans", "(slin@8000)->(ulaw@8000)" if music else ""), ("Callgroup", "0"),
                ("Pickupgroup", "0"), ("Seconds", str(int(time.time() - channel.created)))]

    async def getvar(self, session: AmiSession, action: AmiMessage) -> None:
        variable = action.get("Variable") or ""
        if not variable:
            session.respond(action, "Error", [("Message", "No variable specified")])
            return
        name = action.get("Channel") or ""
        if name:
            channel = self.pbx.channels.get(name)
            if channel is None:
                session.respond(action, "Error", [("Message", "No such channel")])
                return
            value = channel.variables.get(variable, "")
        else:
            value = self.pbx.dialplan.globals.get(variable, "")
        session.respond(action, "Success", [("Variable", variable), ("Value", value)])

    async def setvar(self, session: AmiSession, action: AmiMessage) -> None:
        variable = action.get("Variable") or ""
        if not variable:
            session.respond(action, "Error", [("Message", "No variable specified")])
            return
        name = action.get("Channel") or ""
        channel = self.pbx.channels.get(name) if name else None
        if name and channel is None:
            session.respond(action, "Error", [("Message", "No such channel")])
            return
        value = action.get("Value") or ""
        session.respond(action, "Success", [("Message", "Variable Set")])  # before the VarSet it causes
        if channel is None:
            self.pbx.dialplan.globals[variable] = value
        else:
            self.pbx.set_variable(channel, variable, value)
