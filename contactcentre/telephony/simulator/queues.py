"""app_queue's state, simulated: queues, members, waiting callers, and the events that state publishes.

The queues and static members come from queues.conf (`queues_conf.py`). This
module keeps what app_queue keeps between calls and publishes what it
publishes when that changes:

* a member's `Status` is the device state of its state interface (the phone's
  channels; `pbx.device_state` reports every change here), so one phone in
  two queues, or behind a `Local/2001@agents/n` member, changes both
  (`QueueMemberStatus` per queue, as queue-localmembers.ami shows);
* `Queue:<queue>`, `Queue:<queue>_avail` and `Queue:<queue>_pause_<interface>`
  device states, sent only when they change, as Asterisk's device state cache
  does;
* member bookkeeping: calls taken and last call (shared by interface across
  queues: shared_lastcall), wrap-up, pause, in call;
* queue_log lines, in Asterisk's `time|callid|queue|agent|event|data` form.

The Queue() application (callers waiting, members rung, the talk) is
`queue_calls.py`; the AMI actions are `queue_actions.py`.

Queues are walked in app_queue's own order: its queue container is a hash
table of 53 buckets keyed by ast_str_case_hash(name), so support, helpdesk and
sales come out in that order (queue-localmembers.ami, agent-states.ami), not
in file order.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from contactcentre.telephony.simulator.channels import SimChannel
from contactcentre.telephony.simulator.queues_conf import MemberConf, QueueConf, QueuesConf

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

QUEUE_BUCKETS = 53  # app_queue.c MAX_QUEUE_BUCKETS
PENALTY_WEIGHT = 1_000_000  # app_queue's metric: penalty * 1000000 + the strategy's own figure


class DeviceStatus(IntEnum):
    """AST_DEVICE_*: the number QueueMemberStatus and QueueMember carry in `Status`."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


# Statuses in which a member may be offered a call; the busy ones only with ringinuse=yes.
_FREE = {DeviceStatus.NOT_INUSE, DeviceStatus.UNKNOWN}
_BUSY = {DeviceStatus.INUSE, DeviceStatus.BUSY, DeviceStatus.RINGING, DeviceStatus.RINGINUSE, DeviceStatus.ONHOLD}
_LOGGED_OUT = {DeviceStatus.UNAVAILABLE, DeviceStatus.INVALID}


def queue_hash(name: str) -> int:
    """ast_str_case_hash() of Asterisk 22 (unsigned djb2 of the lower-cased name, top bit cleared)."""
    value = 5381
    for byte in name.lower().encode():
        value = ((value * 33) & 0xFFFFFFFF) ^ byte
    return value & 0x7FFFFFFF


@dataclass(eq=False)
class Member:
    interface: str
    name: str
    state_interface: str
    penalty: int
    dynamic: bool
    login_time: int
    ringinuse: bool
    status: DeviceStatus = DeviceStatus.NOT_INUSE
    paused: bool = False
    paused_reason: str = ""
    last_pause: int = 0
    calls: int = 0
    last_call: float = 0.0
    in_call: bool = False  # connected to a caller of this queue
    wrapuptime: int = 0  # the member's own; 0 means the queue's applies
    reserved: bool = False  # being rung: not offered to another caller (app_queue's pending members)

    def blob(self, queue: str) -> list[tuple[str, str]]:
        """QueueMemberStatus / Pause / Added / Removed / Penalty all carry these, in this order."""
        return [("Queue", queue), ("MemberName", self.name), ("Interface", self.interface),
                ("StateInterface", self.state_interface), ("Membership", self.membership),
                ("Penalty", str(self.penalty)), ("CallsTaken", str(self.calls)),
                ("LastCall", str(int(self.last_call))), ("LastPause", str(self.last_pause)),
                ("LoginTime", str(self.login_time)), ("InCall", str(int(self.in_call))),
                ("Status", str(int(self.status))), ("Paused", str(int(self.paused))),
                ("PausedReason", self.paused_reason), ("Ringinuse", str(int(self.ringinuse))),
                ("Wrapuptime", str(self.wrapuptime))]

    @property
    def membership(self) -> str:
        return "dynamic" if self.dynamic else "static"


@dataclass(eq=False)
class Entry:
    """A caller waiting in a queue."""

    channel: SimChannel
    start: float
    original_position: int
    ringing: bool = False  # members are being rung for it: callers behind it may ring others (autofill)

    def wait(self, now: float) -> int:
        return int(now - self.start)


class CallQueue:
    def __init__(self, conf: QueueConf, members: list[Member]):
        self.conf = conf
        self.name = conf.name
        self.members = members
        self.entries: list[Entry] = []
        self.rrpos = 0  # rrmemory: where the next round starts
        self.wrapped = False
        # Statistics, as app_queue keeps them (QueueParams, QueueSummary, the QUEUE* variables).
        self.holdtime = 0
        self.talktime = 0
        self.completed = 0
        self.abandoned = 0
        self.completed_in_sl = 0
        self.abandoned_in_sl = 0

    def member(self, interface: str) -> Member | None:
        return next((m for m in self.members if m.interface == interface), None)

    def position(self, entry: Entry) -> int:
        return self.entries.index(entry) + 1

    def wrapuptime(self, member: Member) -> int:
        return member.wrapuptime or self.conf.wrapuptime

    def available(self, member: Member, now: float) -> bool:
        """app_queue's is_member_available(), plus members already being rung for another caller."""
        if member.reserved or member.paused:
            return False
        if member.status not in _FREE and not (member.status in _BUSY and member.ringinuse):
            return False
        wrapup = self.wrapuptime(member)
        return not (member.last_call and wrapup and now - member.last_call < wrapup)

    def logged_in(self) -> list[Member]:
        return [m for m in self.members if m.status not in _LOGGED_OUT]

    def idle(self) -> list[Member]:
        """QueueSummary's Available: idle phones of unpaused members (wrap-up does not count there)."""
        return [m for m in self.members if m.status in _FREE and not m.paused]

    def record_hold(self, holdtime: int) -> None:
        """recalc_holdtime(): a running average that weighs the newest call a quarter."""
        self.holdtime = ((self.holdtime << 2) - self.holdtime + holdtime) >> 2

    def record_talk(self, talktime: int, holdtime: int) -> None:
        self.completed += 1
        self.talktime = ((self.talktime << 2) - self.talktime + talktime) >> 2
        if holdtime <= self.conf.servicelevel:
            self.completed_in_sl += 1

    def record_abandon(self, holdtime: int) -> None:
        self.abandoned += 1
        if holdtime <= self.conf.servicelevel:
            self.abandoned_in_sl += 1

    @property
    def service_level_perf(self) -> float:
        return 100.0 * self.completed_in_sl / self.completed if self.completed else 0.0

    @property
    def service_level_perf2(self) -> float:
        done = self.completed + self.abandoned
        return 100.0 * (self.abandoned_in_sl + self.completed_in_sl) / done if done else 0.0

    def variables(self) -> list[tuple[str, str]]:
        """setqueuevar: what Asterisk puts on the channels as the call goes on."""
        return [("QUEUENAME", self.name), ("QUEUEMAX", str(self.conf.maxlen)), ("QUEUESTRATEGY", self.conf.strategy),
                ("QUEUECALLS", str(len(self.entries))), ("QUEUEHOLDTIME", str(self.holdtime)),
                ("QUEUETALKTIME", str(self.talktime)), ("QUEUECOMPLETED", str(self.completed)),
                ("QUEUEABANDONED", str(self.abandoned)), ("QUEUESRVLEVEL", str(self.conf.servicelevel)),
                ("QUEUESRVLEVELPERF", f"{self.service_level_perf:.1f}")]

    # -- strategies ------------------------------------------------------------

    def ranked(self, now: float) -> list[tuple[int, int, Member]]:
        """(metric, position, member) for every member, best first, as app_queue's calc_metric()."""
        self.wrapped = False
        metric = METRICS[self.conf.strategy]
        scored = [(metric(self, m, pos, now) + m.penalty * PENALTY_WEIGHT, pos, m)
                  for pos, m in enumerate(self.members)]
        return sorted(scored, key=lambda item: (item[0], item[1]))

    def choose(self, now: float) -> list[Member]:
        """The members to ring now: the best available one, or with ringall every available member
        that shares its metric (its penalty). rrmemory then remembers where the next round starts."""
        ranked = self.ranked(now)
        best = next((i for i, (_, _, m) in enumerate(ranked) if self.available(m, now)), None)
        if best is None:
            return []
        if self.conf.strategy == "ringall":
            return [m for metric, _, m in ranked if metric <= ranked[best][0] and self.available(m, now)]
        if self.conf.strategy == "rrmemory":
            self._store_next_rr(ranked, best)
        return [ranked[best][2]]

    def _store_next_rr(self, ranked: list[tuple[int, int, Member]], rung: int) -> None:
        """store_next_rr(): the round after this one starts at the next member in metric order, tried
        or not; with none left, at the top again once the positions have wrapped."""
        if rung + 1 < len(ranked):
            self.rrpos = ranked[rung + 1][0] % 1000
        else:
            self.rrpos = 0 if self.wrapped else self.rrpos + 1
        self.wrapped = False


def _ringall_metric(queue: CallQueue, member: Member, pos: int, now: float) -> int:
    return 0


def _rrmemory_metric(queue: CallQueue, member: Member, pos: int, now: float) -> int:
    if pos < queue.rrpos:
        return 1000 + pos
    if pos > queue.rrpos:
        queue.wrapped = True  # someone after rrpos exists: the round can go on without wrapping
    return pos


def _leastrecent_metric(queue: CallQueue, member: Member, pos: int, now: float) -> int:
    return 0 if not member.last_call else 1_000_000 - int(now - member.last_call)


METRICS = {"ringall": _ringall_metric, "rrmemory": _rrmemory_metric, "leastrecent": _leastrecent_metric}


class QueueEngine:
    """Every queue of queues.conf, and the device states their members follow."""

    def __init__(self, pbx: SimulatedPbx, conf: QueuesConf):
        self.pbx = pbx
        self.conf = conf
        now = int(time.time())
        ordered = sorted(conf.queues, key=lambda q: queue_hash(q.name) % QUEUE_BUCKETS)
        self.queues: dict[str, CallQueue] = {
            q.name: CallQueue(q, [self._member(m, q, now, dynamic=False) for m in q.members]) for q in ordered}
        self.queue_log: list[str] = []
        self._devices: dict[str, str] = {}  # Queue:* device states as last published
        self._changed = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()
        for queue in self.queues.values():
            self._devices[f"Queue:{queue.name}_avail"] = self._avail_state(queue)
        self.log("NONE", "NONE", "NONE", "QUEUESTART")

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def find(self, name: str) -> CallQueue | None:
        """Queue names are matched without regard to case, as app_queue does."""
        return next((q for q in self.queues.values() if q.name.lower() == name.strip().lower()), None)

    def _member(self, conf: MemberConf, queue: QueueConf, login_time: int, *, dynamic: bool) -> Member:
        return Member(conf.interface, conf.display_name, conf.device, conf.penalty, dynamic, login_time,
                      queue.ringinuse, self.device_status(conf.device))

    def new_member(self, queue: CallQueue, conf: MemberConf) -> Member:
        return self._member(conf, queue.conf, int(time.time()), dynamic=True)

    # -- waking the callers that wait ------------------------------------------------

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change that may let a waiting caller ring someone; take it before looking."""
        return self._changed

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def notify_later(self, seconds: float) -> None:
        """Wake the callers when a wrap-up time is over (nothing else changes at that moment)."""
        loop = asyncio.get_running_loop()
        self._timers = {t for t in self._timers if not t.cancelled() and t.when() > loop.time()}
        self._timers.add(loop.call_later(seconds, self.notify))

    # -- device states -----------------------------------------------------------------

    def device_status(self, device: str) -> DeviceStatus:
        state = self.pbx.device_states.get(device)
        if state is not None:
            return DeviceStatus.__members__.get(state, DeviceStatus.UNKNOWN)
        tech, _, resource = device.partition("/")
        if tech.upper() == "PJSIP":
            return DeviceStatus.NOT_INUSE if self.pbx.endpoint_exists(resource) else DeviceStatus.INVALID
        return DeviceStatus.NOT_INUSE

    def device_changed(self, device: str, state: str) -> None:
        """pbx.device_state() reports every DeviceStateChange: members that follow the device change."""
        if device.startswith("Queue:"):
            return
        status = DeviceStatus.__members__.get(state, DeviceStatus.UNKNOWN)
        touched = False
        for queue in self.queues.values():
            followers = [m for m in queue.members if m.state_interface == device]
            for member in followers:
                if member.status == status:
                    continue
                if status == DeviceStatus.NOT_INUSE and member.in_call:
                    self.call_finished(queue, member)  # update_status() -> update_queue(), as Asterisk does
                member.status = status
                self.publish("QueueMemberStatus", queue, member)
            if followers:
                touched = True
                self.update_avail(queue)
        if touched:
            self.notify()

    def queue_device(self, device: str, state: str) -> None:
        if self._devices.get(device) != state:
            self._devices[device] = state
            self.pbx.device_state(device, state)

    def _avail_state(self, queue: CallQueue) -> str:
        now = time.time()
        return "NOT_INUSE" if any(queue.available(m, now) for m in queue.members) else "INUSE"

    def update_avail(self, queue: CallQueue) -> None:
        self.queue_device(f"Queue:{queue.name}_avail", self._avail_state(queue))

    def publish(self, event: str, queue: CallQueue, member: Member) -> None:
        self.pbx.emit(event, member.blob(queue.name), privilege="agent,all")

    # -- member bookkeeping --------------------------------------------------------------

    def call_finished(self, queue: CallQueue, member: Member) -> None:
        """The member's call is over (its device went idle, or AgentComplete came first): count it, here and,
        with shared_lastcall, in every queue that has the same interface, and start its wrap-up."""
        if not member.in_call:
            return
        member.in_call = False
        counted = [member]
        if self.conf.shared_lastcall:
            counted += [m for q in self.queues.values() for m in q.members
                        if m.interface == member.interface and m is not member]
        now = time.time()
        for each in counted:
            each.calls += 1
            each.last_call = now
        wrapup = queue.wrapuptime(member)
        if wrapup:
            self.notify_later(wrapup)
        self.notify()

    def set_paused(self, queue: CallQueue, member: Member, paused: bool, reason: str) -> None:
        """set_queue_member_pause(): device states, queue_log, then QueueMemberPause (agent-states.ami)."""
        member.paused = paused
        if paused:
            member.last_pause = int(time.time())
        self.queue_device(f"Queue:{queue.name}_pause_{member.interface}", "INUSE" if paused else "NOT_INUSE")
        self.update_avail(queue)
        self.log(queue.name, "NONE", member.name, "PAUSE" if paused else "UNPAUSE", reason if paused else "")
        # An unpause with a reason shows it in the event only, then it is cleared, as in app_queue.
        member.paused_reason = reason
        self.publish("QueueMemberPause", queue, member)
        if not paused:
            member.paused_reason = ""
        self.notify()

    # -- queue_log -------------------------------------------------------------------------

    def log(self, queue: str, callid: str, agent: str, event: str, *data: str) -> None:
        """ast_queue_log()'s arguments, written as `time|callid|queue|agent|event|data...`."""
        self.queue_log.append("|".join([str(int(time.time())), callid, queue, agent, event, *(data or ("",))]))
