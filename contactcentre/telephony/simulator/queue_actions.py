"""AMI actions of app_queue: QueueStatus, QueueSummary, QueueAdd, QueueRemove, QueuePause, QueuePenalty, QueueLog.

Replies and events as resync.ami and agent-states.ami show them, messages as
Asterisk 22's app_queue.c words them:

* list actions answer `Response: Success` with `EventList: start`, then the
  items to the asking session only (QueueParams / QueueMember / QueueEntry,
  or QueueSummary; no Privilege header, ActionID last), then `...Complete`;
  QueueStatus's ListItems counts every item, params and entries included;
* member actions answer first, then send what they caused (DeviceStateChange
  of `Queue:<queue>_pause_<interface>`, QueueMemberPause / Added / Removed /
  Penalty) and write queue_log: ADDMEMBER and REMOVEMEMBER under callid
  MANAGER and PENALTY and custom lines under NONE, all naming the interface;
  PAUSE / UNPAUSE name the member, and a pause with no Queue first writes
  PAUSEALL / UNPAUSEALL under queue NONE.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator.ami_server import ActionHandler, AmiSession
from contactcentre.telephony.simulator.queues import CallQueue, Entry, Member, QueueEngine
from contactcentre.telephony.simulator.queues_conf import MemberConf, is_true

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.channels import SimChannel

def _action_id(action: AmiMessage) -> list[tuple[str, str]]:
    return [("ActionID", action["ActionID"])] if action.get("ActionID") is not None else []


def _error(session: AmiSession, action: AmiMessage, message: str) -> None:
    session.respond(action, "Error", [("Message", message)])


def _known(value: str) -> str:
    """QueueEntry says `unknown` where the channel snapshot says `<unknown>` (S_COR(..., "unknown"))."""
    return value if value and value != "<unknown>" else "unknown"


class QueueActions:
    def __init__(self, engine: QueueEngine):
        self.engine = engine

    def handlers(self) -> dict[str, ActionHandler]:
        return {"QueueStatus": self.queue_status, "QueueSummary": self.queue_summary, "QueueAdd": self.queue_add,
                "QueueRemove": self.queue_remove, "QueuePause": self.queue_pause,
                "QueuePenalty": self.queue_penalty, "QueueLog": self.queue_log}

    def _queues(self, action: AmiMessage) -> list[CallQueue]:
        wanted = (action.get("Queue") or "").lower()
        return [q for q in self.engine.queues.values() if not wanted or q.name.lower() == wanted]

    # -- list actions -------------------------------------------------------------------

    async def queue_status(self, session: AmiSession, action: AmiMessage) -> None:
        session.respond(action, "Success", [("EventList", "start"), ("Message", "Queue status will follow")])
        member_filter = action.get("Member") or ""
        now = time.time()
        items = 0
        for queue in self._queues(action):
            session.send(("Event", "QueueParams"), [*self._params(queue), *_action_id(action)])
            items += 1
            for member in queue.members:
                if member_filter and member_filter not in (member.interface, member.name):
                    continue
                session.send(("Event", "QueueMember"), [*self._member_item(queue, member), *_action_id(action)])
                items += 1
            for position, entry in enumerate(queue.entries, start=1):
                session.send(("Event", "QueueEntry"), [*self._entry_item(queue, position, entry, now),
                                                       *_action_id(action)])
                items += 1
        session.send(("Event", "QueueStatusComplete"), [*_action_id(action), ("EventList", "Complete"),
                                                        ("ListItems", str(items))])

    @staticmethod
    def _params(queue: CallQueue) -> list[tuple[str, str]]:
        return [("Queue", queue.name), ("Max", str(queue.conf.maxlen)), ("Strategy", queue.conf.strategy),
                ("Calls", str(len(queue.entries))), ("Holdtime", str(queue.holdtime)),
                ("TalkTime", str(queue.talktime)), ("Completed", str(queue.completed)),
                ("Abandoned", str(queue.abandoned)), ("ServiceLevel", str(queue.conf.servicelevel)),
                ("ServicelevelPerf", f"{queue.service_level_perf:.1f}"),
                ("ServicelevelPerf2", f"{queue.service_level_perf2:.1f}"), ("Weight", str(queue.conf.weight))]

    @staticmethod
    def _member_item(queue: CallQueue, member: Member) -> list[tuple[str, str]]:
        return [("Queue", queue.name), ("Name", member.name), ("Location", member.interface),
                ("StateInterface", member.state_interface), ("Membership", member.membership),
                ("Penalty", str(member.penalty)), ("CallsTaken", str(member.calls)),
                ("LastCall", str(int(member.last_call))), ("LastPause", str(member.last_pause)),
                ("LoginTime", str(member.login_time)), ("InCall", str(int(member.in_call))),
                ("Status", str(int(member.status))), ("Paused", str(int(member.paused))),
                ("PausedReason", member.paused_reason), ("Wrapuptime", str(member.wrapuptime))]

    @staticmethod
    def _entry_item(queue: CallQueue, position: int, entry: Entry, now: float) -> list[tuple[str, str]]:
        channel: SimChannel = entry.channel
        return [("Queue", queue.name), ("Position", str(position)), ("Channel", channel.name),
                ("Uniqueid", channel.uniqueid), ("CallerIDNum", _known(channel.caller_num)),
                ("CallerIDName", _known(channel.caller_name)), ("ConnectedLineNum", _known(channel.connected_num)),
                ("ConnectedLineName", _known(channel.connected_name)), ("Wait", str(entry.wait(now))),
                ("Priority", "0")]

    async def queue_summary(self, session: AmiSession, action: AmiMessage) -> None:
        session.respond(action, "Success", [("EventList", "start"), ("Message", "Queue summary will follow")])
        now = time.time()
        queues = self._queues(action)
        for queue in queues:
            logged_in, available = queue.logged_in(), queue.idle()
            longest = max((entry.wait(now) for entry in queue.entries), default=0)
            session.send(("Event", "QueueSummary"), [
                ("Queue", queue.name), ("LoggedIn", str(len(logged_in))), ("Available", str(len(available))),
                ("Callers", str(len(queue.entries))), ("HoldTime", str(queue.holdtime)),
                ("TalkTime", str(queue.talktime)), ("LongestHoldTime", str(longest)), *_action_id(action)])
        session.send(("Event", "QueueSummaryComplete"), [*_action_id(action), ("EventList", "Complete"),
                                                         ("ListItems", str(len(queues)))])

    # -- members ----------------------------------------------------------------------------

    async def queue_add(self, session: AmiSession, action: AmiMessage) -> None:
        name, interface = action.get("Queue") or "", action.get("Interface") or ""
        if not name:
            _error(session, action, "'Queue' not specified.")
            return
        if not interface:
            _error(session, action, "'Interface' not specified.")
            return
        queue = self.engine.find(name)
        if queue is None:
            _error(session, action, "Unable to add interface to queue: No such queue")
            return
        if queue.member(interface) is not None:
            _error(session, action, "Unable to add interface: Already there")
            return
        penalty = action.get("Penalty") or "0"
        paused = is_true(action.get("Paused") or "")
        member = self.engine.new_member(queue, MemberConf(
            interface, int(penalty) if penalty.isdigit() else 0, action.get("MemberName") or "",
            action.get("StateInterface") or ""))
        member.paused = paused
        session.respond(action, "Success", [("Message", "Added interface to queue")])
        queue.members.append(member)
        engine = self.engine
        engine.queue_device(f"Queue:{queue.name}_pause_{interface}", "INUSE" if paused else "NOT_INUSE")
        engine.publish("QueueMemberAdded", queue, member)
        engine.update_avail(queue)
        agent = member.name if engine.conf.log_membername_as_agent and action.get("MemberName") else interface
        engine.log(queue.name, "MANAGER", agent, "ADDMEMBER", "PAUSED" if paused else "")
        engine.notify()

    async def queue_remove(self, session: AmiSession, action: AmiMessage) -> None:
        name, interface = action.get("Queue") or "", action.get("Interface") or ""
        if not name or not interface:
            _error(session, action, "Need 'Queue' and 'Interface' parameters.")
            return
        queue = self.engine.find(name)
        if queue is None:
            _error(session, action, "Unable to remove interface from queue: No such queue")
            return
        member = queue.member(interface)
        if member is None:
            _error(session, action, "Unable to remove interface: Not there")
            return
        if not member.dynamic:
            _error(session, action, "Member not dynamic")
            return
        session.respond(action, "Success", [("Message", "Removed interface from queue")])
        self.engine.publish("QueueMemberRemoved", queue, member)
        queue.members.remove(member)
        self.engine.update_avail(queue)
        self.engine.log(queue.name, "MANAGER", interface, "REMOVEMEMBER", "")

    async def queue_pause(self, session: AmiSession, action: AmiMessage) -> None:
        interface, paused_text = action.get("Interface") or "", action.get("Paused") or ""
        if not interface or not paused_text:
            _error(session, action, "Need 'Interface' and 'Paused' parameters.")
            return
        paused = is_true(paused_text)
        reason = action.get("Reason") or ""
        targets = [(q, m) for q in self._queues(action) if (m := q.member(interface)) is not None]
        if not targets:
            _error(session, action, "Interface not found")
            return
        session.respond(action, "Success", [("Message", "Interface paused successfully" if paused
                                             else "Interface unpaused successfully")])
        if not action.get("Queue"):  # every queue: one PAUSEALL line first, named after the first member
            self.engine.log("NONE", "NONE", targets[0][1].name, "PAUSEALL" if paused else "UNPAUSEALL", reason)
        for queue, member in targets:
            self.engine.set_paused(queue, member, paused, reason)

    async def queue_penalty(self, session: AmiSession, action: AmiMessage) -> None:
        interface, penalty = action.get("Interface") or "", action.get("Penalty") or ""
        if not interface or not penalty:
            _error(session, action, "Need 'Interface' and 'Penalty' parameters.")
            return
        targets = [(q, m) for q in self._queues(action) if (m := q.member(interface)) is not None]
        if not targets or not penalty.lstrip("-").isdigit() or int(penalty) < 0:
            _error(session, action, "Invalid interface, queuename or penalty")
            return
        session.respond(action, "Success", [("Message", "Interface penalty set successfully")])
        for queue, member in targets:
            member.penalty = int(penalty)
            self.engine.log(queue.name, "NONE", interface, "PENALTY", penalty)
            self.engine.publish("QueueMemberPenalty", queue, member)
        self.engine.notify()

    async def queue_log(self, session: AmiSession, action: AmiMessage) -> None:
        queue, event = action.get("Queue") or "", action.get("Event") or ""
        if not queue or not event:
            _error(session, action, "Need 'Queue' and 'Event' parameters.")
            return
        self.engine.log(queue, action.get("UniqueId") or "NONE", action.get("Interface") or "", event,
                        action.get("Message") or "")
        session.respond(action, "Success", [("Message", "Event added successfully")])
