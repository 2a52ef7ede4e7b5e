"""AMI Redirect, BlindTransfer, Atxfer and CancelAtxfer, as transfers-hold.ami shows them.

* Redirect (call 2): the channel's place in the dialplan changes at once
  (`Newexten` still naming the application it ran), it leaves its bridge, the
  bridge dissolves and the other party, if nothing else runs on it, is hung up.
  With an ExtraChannel both go, and neither is hung up.
* BlindTransfer (call 1): `Unhold` on the transferer, the `BlindTransfer`
  event (and, for a queue call, app_queue's `AgentComplete` with Reason
  transfer), then the transferee is redirected as above and the transferer is
  left with nothing to do, so it is hung up.
* Atxfer (calls 3 and 4): Asterisk feeds the `atxfer` feature code and the
  number to the transferer as DTMF (the `DTMFEnd` events); the transferer is
  put on hold (its peer hears music) and moved into a consultation bridge with
  ;1 of a Local pair whose ;2 dials the target. When the transferer hangs up
  after the target answered, the bridges merge, ;1 lands beside the transferee
  and then optimises away, swapping the target in. CancelAtxfer (the
  `atxferabort` code) takes the transferer back and drops the consultation.

Response messages are Asterisk 22's (manager.c). Redirect of a channel that
neither runs a dialplan nor is bridged (a leg still ringing) is refused with
`Redirect failed`: Asterisk would masquerade it into a new channel, which the
simulator does not model.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator.ami_server import ActionHandler, AmiSession
from contactcentre.telephony.simulator.bridges import SimBridge
from contactcentre.telephony.simulator.channels import UP, SimChannel
from contactcentre.telephony.simulator.local import LocalPair

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

# config/asterisk/features.conf: the codes AMI Atxfer and CancelAtxfer feed to the transferer.
ATXFER_CODE = "*2"
ATXFER_ABORT = "*1"


def _error(session: AmiSession, action: AmiMessage, message: str) -> None:
    session.respond(action, "Error", [("Message", message)])


class TransferActions:
    def __init__(self, pbx: SimulatedPbx):
        self.pbx = pbx
        self.atxfers: dict[str, AttendedTransfer] = {}  # by the transferer's channel name
        self._optimisations = itertools.count()

    def handlers(self) -> dict[str, ActionHandler]:
        return {"Redirect": self.redirect, "BlindTransfer": self.blind_transfer, "Atxfer": self.atxfer,
                "CancelAtxfer": self.cancel_atxfer}

    def next_optimisation_id(self) -> int:
        return next(self._optimisations)

    def hangup(self, channel: SimChannel, cause: int) -> bool:
        """A transferer hanging up completes (or drops) its attended transfer; True if that happened."""
        transfer = self.atxfers.get(channel.name)
        if transfer is None:
            return False
        transfer.transferer_hangs_up(cause)
        return True

    # -- Redirect -----------------------------------------------------------------

    async def redirect(self, session: AmiSession, action: AmiMessage) -> None:
        name = action.get("Channel") or ""
        context, exten = action.get("Context") or "", action.get("Exten") or ""
        for value, missing in ((name, "Channel not specified"), (context, "Context not specified"),
                               (exten, "Exten not specified"), (action.get("Priority"), "Priority not specified")):
            if not value:
                _error(session, action, missing)
                return
        priority = self._priority(context, exten, action.get("Priority") or "")
        if priority < 1:
            _error(session, action, "Priority is invalid")
            return
        extra_name = action.get("ExtraChannel") or ""
        extra_place = (action.get("ExtraContext") or context, action.get("ExtraExten") or exten, priority)
        if extra_name and action.get("ExtraContext"):
            extra_priority = self._priority(extra_place[0], extra_place[1], action.get("ExtraPriority") or "")
            if not action.get("ExtraExten"):
                _error(session, action, "ExtraExten not specified")
                return
            if extra_priority < 1:
                _error(session, action, "ExtraPriority is invalid")
                return
            extra_place = (extra_place[0], extra_place[1], extra_priority)
        channel = self.pbx.channels.get(name)
        if channel is None:
            _error(session, action, f"Channel does not exist: {name}")
            return
        if channel.dead:
            _error(session, action, "Redirect failed, channel not up.")
            return
        if not extra_name:
            if not self._can_move(channel):
                _error(session, action, "Redirect failed")
                return
            session.respond(action, "Success", [("Message", "Redirect successful")])
            self.pbx.set_goto(channel, context, exten, priority)
            self.pbx.apply_goto(channel)
            return
        extra = self.pbx.channels.get(extra_name)
        if extra is None:
            _error(session, action, f"ExtraChannel does not exist: {extra_name}")
            return
        if extra.dead:
            _error(session, action, "Redirect failed, extra channel not up.")
            return
        if not (self._can_move(channel) and self._can_move(extra)):
            _error(session, action, "Redirect failed")
            return
        session.respond(action, "Success", [("Message", "Dual Redirect successful")])
        # Both places are set before either leaves: the bridge they share then dissolves without
        # hanging up the second one, which carries on at its own new place.
        self.pbx.set_goto(channel, context, exten, priority)
        self.pbx.set_goto(extra, *extra_place)
        self.pbx.apply_goto(channel)
        self.pbx.apply_goto(extra)

    def _priority(self, context: str, exten: str, text: str) -> int:
        if text.strip().isdigit():
            return int(text)
        extension = self.pbx.dialplan.find(context, exten)
        label = extension.priority_of(text.strip()) if extension is not None else None
        return label or 0

    @staticmethod
    def _can_move(channel: SimChannel) -> bool:
        return channel.has_pbx or channel.bridge is not None

    # -- BlindTransfer ------------------------------------------------------------

    def _transferer(self, session: AmiSession, action: AmiMessage) -> tuple[SimChannel, str, str] | None:
        """(channel, its name, the target extension) of a transfer action, or None after an Error reply."""
        name, exten = action.get("Channel") or "", action.get("Exten") or ""
        problem = ("No channel specified" if not name else "No extension specified" if not exten else
                   "Channel specified does not exist" if name not in self.pbx.channels else None)
        if problem:
            _error(session, action, problem)
            return None
        return self.pbx.channels[name], name, exten

    async def blind_transfer(self, session: AmiSession, action: AmiMessage) -> None:
        found = self._transferer(session, action)
        if found is None:
            return
        transferer, name, exten = found
        context = action.get("Context") or transferer.context
        bridge = transferer.bridge
        if bridge is None or name in self.atxfers:
            _error(session, action, "Transfer invalid")
            return
        if len(bridge.channels) != 2:
            # Asterisk puts a Local channel in the transferer's place in a multi-party bridge;
            # the simulator has only two-party bridges outside of attended transfers.
            _error(session, action, "Transfer failed")
            return
        transferee = bridge.others(transferer)[0]
        session.respond(action, "Success", [("Message", "Transfer succeeded")])
        pbx = self.pbx
        pbx.channel_event("Unhold", transferer)
        pbx.set_variable(transferer, "BLINDTRANSFER", transferee.name)
        pbx.set_variable(transferee, "BLINDTRANSFER", transferer.name)
        pbx.emit("BlindTransfer", [("Result", "Success"), *transferer.headers("Transferer"),
                                   *transferee.headers("Transferee"), *bridge.headers(), ("IsExternal", "Yes"),
                                   ("Context", context), ("Extension", exten)])
        pbx.queue_app.transferred(bridge, "BLINDTRANSFER", exten, context)  # a queue call: AgentComplete
        pbx.set_goto(transferee, context, exten, 1)
        pbx.apply_goto(transferee)

    # -- Atxfer / CancelAtxfer ----------------------------------------------------

    async def atxfer(self, session: AmiSession, action: AmiMessage) -> None:
        found = self._transferer(session, action)
        if found is None:
            return
        transferer, name, exten = found
        session.respond(action, "Success", [("Message", "Atxfer successfully queued")])
        if action.get("Context"):
            self.pbx.set_variable(transferer, "TRANSFER_CONTEXT", action["Context"])
        context = transferer.variables.get("TRANSFER_CONTEXT") or transferer.context
        dtmf(self.pbx, transferer, ATXFER_CODE)
        if transferer.bridge is None or name in self.atxfers or not transferer.may_transfer:
            dtmf(self.pbx, transferer, exten)  # the digits reach no bridge feature: nothing happens
            return
        transfer = AttendedTransfer(self, transferer, transferer.bridge)
        self.atxfers[name] = transfer
        transfer.start(exten, context)

    async def cancel_atxfer(self, session: AmiSession, action: AmiMessage) -> None:
        name = action.get("Channel") or ""
        if not name:
            _error(session, action, "No channel specified")
            return
        transferer = self.pbx.channels.get(name)
        if transferer is None:
            _error(session, action, "Channel specified does not exist")
            return
        session.respond(action, "Success", [("Message", "CancelAtxfer successfully queued")])
        dtmf(self.pbx, transferer, ATXFER_ABORT)
        transfer = self.atxfers.get(name)
        if transfer is not None:
            transfer.cancel()


def dtmf(pbx: SimulatedPbx, channel: SimChannel, digits: str) -> None:
    for digit in digits:
        pbx.channel_event("DTMFEnd", channel, ("Digit", digit), ("DurationMs", "0"), ("Direction", "Received"),
                          privilege="dtmf,all")


class AttendedTransfer:
    """One attended transfer, from Atxfer until it completes, is cancelled or fails."""

    def __init__(self, actions: TransferActions, transferer: SimChannel, bridge: SimBridge):
        self.actions = actions
        self.pbx = actions.pbx
        self.transferer = transferer
        self.original = bridge  # where the transferee waits, with music
        self.consultation: SimBridge | None = None
        self.pair: LocalPair | None = None

    @property
    def transferees(self) -> list[SimChannel]:
        return self.original.others(self.transferer)

    def start(self, exten: str, context: str) -> None:
        pbx, transferer = self.pbx, self.transferer
        pbx.channel_event("Hold", transferer)  # Asterisk's own hold: no MusicClass, unlike a phone's
        for transferee in self.transferees:
            pbx.start_moh(transferee, "default")
        dtmf(pbx, transferer, exten)
        if pbx.dialplan.find(context, exten) is None:
            self._back_to_transferee()  # an extension that does not exist: the transferer comes back
            self._finish()
            return
        pair = self.pair = LocalPair(pbx, exten, context, linkedid=transferer.linkedid)
        pair.on_two_gone = self._consultation_failed
        self.consultation = pbx.new_bridge()
        pair.set_caller_id(pair.two, transferer.caller_num, transferer.caller_name)
        pbx.emit("LocalBridge", [*pair.headers(), ("Context", context), ("Exten", exten),
                                 ("LocalOptimization", "Yes")])
        pbx.start_pbx(pair.two, context, exten, 1)
        pair.one.connected_num, pair.one.connected_name = transferer.caller_num, transferer.caller_name
        pbx.channel_event("NewConnectedLine", pair.one)
        self.consultation.enter(pair.one)
        self.original.leave(transferer)  # moved, not hung up: the original bridge stays
        self.consultation.enter(transferer)
        transferer.connected_num, transferer.connected_name = pair.one.caller_num or "<unknown>", \
            pair.one.caller_name or "<unknown>"
        pbx.channel_event("NewConnectedLine", transferer)

    def cancel(self) -> None:
        self._back_to_transferee()
        self._drop_consultation()
        transferee = self.transferees[0] if self.transferees else None
        if transferee is not None:
            self.transferer.connected_num = transferee.caller_num or "<unknown>"
            self.transferer.connected_name = transferee.caller_name or "<unknown>"
            self.pbx.channel_event("NewConnectedLine", self.transferer)
        self._finish()

    def transferer_hangs_up(self, cause: int) -> None:
        pair = self.pair
        answered = pair is not None and pair.one.state == UP and not pair.two.dead
        if answered and self.transferees:
            self._complete(cause)
            return
        # Before the target answered (or with no one left to transfer): the consultation is dropped
        # and the transferee's call ends with the transferer's, as if it had hung up on them.
        pbx, transferer = self.pbx, self.transferer
        transferer.hangup_cause = cause
        pbx.channel_event("HangupRequest", transferer, ("Cause", str(cause)))
        if self.consultation is not None and transferer.bridge is self.consultation:
            self.consultation.leave(transferer)
        self._drop_consultation()
        for transferee in self.transferees:
            pbx.stop_moh(transferee)
        for kicked in self.original.dissolve():
            pbx._after_kick(kicked)
        pbx.destroy(transferer, cause)
        self._finish()

    def _complete(self, cause: int) -> None:
        """transfers-hold call 3: merge, AttendedTransfer, then the Local pair optimises away."""
        pbx, transferer, pair = self.pbx, self.transferer, self.pair
        consultation, original = self.consultation, self.original
        pair.on_two_gone = None
        transferee = self.transferees[0]
        transferer.hangup_cause = cause
        pbx.channel_event("HangupRequest", transferer, ("Cause", str(cause)))
        consultation.leave(transferer)
        pbx.emit("BridgeMerge", [*original.headers("To"), *consultation.headers("From")])
        consultation.leave(pair.one)
        original.enter(pair.one)
        pbx.stop_moh(transferee)
        pbx.emit("AttendedTransfer", [
            ("Result", "Success"), *transferer.headers("OrigTransferer"), *original.headers("Orig"),
            *transferer.headers("SecondTransferer"), *consultation.headers("Second"),
            *transferee.headers("Transferee"), *pair.one.headers("TransferTarget"), ("IsExternal", "No"),
            ("DestType", "Bridge"), ("DestBridgeUniqueid", original.id)])
        pbx.queue_app.transferred(original, "ATTENDEDTRANSFER", "BRIDGE", original.id)
        self._connect(pair.one, transferee)
        self._connect(transferee, pair.one)
        consultation.destroy()
        pbx.destroy(transferer, cause)
        self._finish()
        self._optimise(transferee)

    def _optimise(self, transferee: SimChannel) -> None:
        """The Local pair between the transferee's bridge and the target's goes away: the target is
        swapped into the transferee's bridge and both halves hang up."""
        pbx, pair, original = self.pbx, self.pair, self.original
        target_bridge = pair.two.bridge
        target = target_bridge.others(pair.two)[0] if target_bridge is not None and target_bridge.channels else None
        if target is None:
            return
        optimisation = str(self.actions.next_optimisation_id())
        self._connect(target, transferee)
        pbx.emit("LocalOptimizationBegin", [*pair.headers(), *target.headers("Source"),
                                            ("DestUniqueId", pair.two.uniqueid), ("Id", optimisation)])
        target_bridge.leave(target)
        original.leave(pair.one)
        original.enter(target, swap=pair.one)
        pair.set_caller_id(pair.two, transferee.caller_num, transferee.caller_name)
        pbx.emit("LocalOptimizationEnd", [*pair.headers(), ("Success", "No"), ("Id", optimisation)])
        target_bridge.leave(pair.two)
        target_bridge.destroy()
        self._end_two(soft_first=True)
        pbx.destroy(pair.one, 16)
        pbx.destroy(pair.two, 16)

    def _consultation_failed(self) -> None:
        """;2's dialplan ended on its own (the target did not answer, or was busy)."""
        self._back_to_transferee()
        if self.pair is not None:
            if self.consultation is not None:
                self.consultation.leave(self.pair.one)
            self.pbx.destroy(self.pair.one, 16)
        if self.consultation is not None:
            self.consultation.destroy()
        self._finish()

    def _back_to_transferee(self) -> None:
        pbx, transferer = self.pbx, self.transferer
        if self.consultation is not None and transferer.bridge is self.consultation:
            self.consultation.leave(transferer)
        if transferer.bridge is None and not self.original.destroyed:
            self.original.enter(transferer)
        for transferee in self.transferees:
            pbx.stop_moh(transferee)
        pbx.channel_event("Unhold", transferer)

    def _drop_consultation(self) -> None:
        """Cancelled (transfers-hold call 4): ;1 leaves and hangs up, ;2 is told to hang up and its
        Dial() then hangs up the target it called."""
        pair, consultation = self.pair, self.consultation
        if pair is None:
            return
        pair.on_two_gone = None
        if consultation is not None:
            consultation.leave(pair.one)
            consultation.destroy()
        self._end_two(soft_first=False)
        self.pbx.destroy(pair.one, 16)
        if pair.two.bridge is not None:
            pair.two.bridge.leave(pair.two)
            self.pbx.soft_hangup_request(pair.two)

    def _end_two(self, soft_first: bool) -> None:
        two = self.pair.two
        if two.destroyed or two.dead:
            return
        two.hangup_cause = 16
        if soft_first:
            self.pbx.soft_hangup_request(two)
        self.pbx.channel_event("HangupRequest", two, ("Cause", "16"))
        two.interrupted.set()

    def _connect(self, channel: SimChannel, to: SimChannel) -> None:
        channel.connected_num, channel.connected_name = to.caller_num or "<unknown>", to.caller_name or "<unknown>"
        self.pbx.channel_event("NewConnectedLine", channel)

    def _finish(self) -> None:
        self.actions.atxfers.pop(self.transferer.name, None)
