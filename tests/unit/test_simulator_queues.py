"""The simulated app_queue's state: queues.conf read as Asterisk reads it, and members chosen as app_queue chooses."""

import pytest

from contactcentre.telephony.simulator import dialplan
from contactcentre.telephony.simulator.applications import APPLICATIONS
from contactcentre.telephony.simulator.queues import QUEUE_BUCKETS, CallQueue, DeviceStatus, Member, queue_hash
from contactcentre.telephony.simulator.queues_conf import QueueConf, QueuesConfError, load, parse
from tests.captures import CAPTURES


def test_the_captures_queues_conf_reads_with_its_template():
    conf = load(CAPTURES / "asterisk-config" / "pbx" / "queues.conf")

    assert [q.name for q in conf.queues] == ["support", "sales", "helpdesk"]  # the template is no queue
    support, sales, helpdesk = conf.queues
    assert (support.strategy, support.timeout, support.retry, support.wrapuptime) == ("rrmemory", 15, 2, 3)
    assert not support.ringinuse and support.joinempty and support.setqueuevar
    assert [(m.interface, m.penalty, m.name) for m in sales.members][-1] == ("PJSIP/agent2", 1, "Bob Agent")
    assert helpdesk.members[0].state_interface == "PJSIP/agent1"
    assert conf.autofill and conf.shared_lastcall and not conf.log_membername_as_agent


def test_the_captures_dialplan_uses_only_applications_the_simulator_runs():
    plan = dialplan.load(CAPTURES / "asterisk-config" / "pbx" / "extensions.conf")
    used = {step.app.lower() for context in plan.contexts.values() for ext in context.extensions
            for step in ext.steps.values()}
    assert used <= set(APPLICATIONS), used - set(APPLICATIONS)


def test_the_shipped_queues_conf_reads():
    support = load().queue("SUPPORT")  # queue names are matched without regard to case
    assert support.strategy == "leastrecent" and len(support.members) == 4


def test_defaults_are_app_queues_and_a_member_line_may_give_only_the_interface():
    queue = parse("[q]\nmember => PJSIP/alice\n").queues[0]

    assert (queue.strategy, queue.timeout, queue.retry, queue.ringinuse) == ("ringall", 15, 5, True)
    member = queue.members[0]
    assert (member.display_name, member.device, member.penalty) == ("PJSIP/alice", "PJSIP/alice", 0)


@pytest.mark.parametrize("text, message", [
    ("[q](nosuch)\n", r"x.conf:1: template 'nosuch' is not defined above"),
    ("[q]\nstrategy = fewestcalls\n", r"x.conf:2: strategy: strategy 'fewestcalls' is not simulated"),
    ("[q]\nmember => agent1\n", r"x.conf:2: member needs an interface"),
    ("timeout = 5\n", r"x.conf:1: line outside any \[section\]"),
    ("[q]\ntimeout = soon\n", r"x.conf:2: timeout"),
])
def test_a_bad_line_names_its_file_and_line(text, message):
    with pytest.raises(QueuesConfError, match=message):
        parse(text, "x.conf")


def test_queues_come_in_app_queues_hash_order_not_file_order():
    # queue-localmembers.ami and agent-states.ami send QueueMemberStatus for support, helpdesk, sales.
    names = ["support", "sales", "helpdesk"]
    assert sorted(names, key=lambda n: queue_hash(n) % QUEUE_BUCKETS) == ["support", "helpdesk", "sales"]


def member(interface: str, penalty: int = 0, last_call: float = 0.0) -> Member:
    return Member(interface, interface, interface, penalty, False, 0, False, DeviceStatus.NOT_INUSE,
                  last_call=last_call)


def queue(strategy: str, *members: Member, wrapuptime: int = 0) -> CallQueue:
    return CallQueue(QueueConf("q", strategy=strategy, wrapuptime=wrapuptime, ringinuse=False), list(members))


def test_rrmemory_goes_round_from_the_member_after_the_last_one_rung():
    agent1, agent2, agent3 = member("PJSIP/agent1"), member("PJSIP/agent2"), member("PJSIP/agent3")
    q = queue("rrmemory", agent1, agent2, agent3)

    assert q.choose(100.0) == [agent1]
    assert q.choose(100.0) == [agent2]
    agent3.status = DeviceStatus.INUSE
    assert q.choose(100.0) == [agent1]  # agent3 is busy: the round wraps to agent1
    agent3.status = DeviceStatus.NOT_INUSE
    assert q.choose(100.0) == [agent2]


def test_leastrecent_rings_who_has_waited_longest_and_penalties_come_last():
    fresh, rested, busy_lately = member("PJSIP/a", 1), member("PJSIP/b", last_call=10.0), member("PJSIP/c",
                                                                                                  last_call=90.0)
    q = queue("leastrecent", busy_lately, rested, fresh)

    assert q.choose(100.0) == [rested]
    rested.status = busy_lately.status = DeviceStatus.INUSE
    assert q.choose(100.0) == [fresh]  # never called, but penalty 1: only once nobody else is free


def test_ringall_rings_every_free_member_of_the_best_penalty():
    a, b, c, d = member("PJSIP/a"), member("PJSIP/b"), member("PJSIP/c", 1), member("PJSIP/d")
    d.paused = True
    q = queue("ringall", a, b, c, d)

    assert q.choose(0.0) == [a, b]
    a.status = b.status = DeviceStatus.RINGING
    assert q.choose(0.0) == [c]


def test_a_member_in_wrap_up_or_being_rung_is_not_available():
    agent = member("PJSIP/agent1", last_call=100.0)
    q = queue("ringall", agent, wrapuptime=3)

    assert not q.available(agent, 102.0) and q.available(agent, 103.5)
    agent.reserved = True
    assert not q.available(agent, 103.5)


def test_hold_and_talk_times_are_app_queues_running_averages():
    q = queue("ringall")
    for holdtime in (11, 2):
        q.record_hold(holdtime)
    assert q.holdtime == 2  # agent-states.ami: QueueParams Holdtime 2 after waits of 11 s and 2 s
    q.record_talk(20, holdtime=40)
    assert (q.completed, q.completed_in_sl, q.talktime) == (1, 0, 5)
