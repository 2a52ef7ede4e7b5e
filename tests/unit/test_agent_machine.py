import pytest

from contactcentre.bus import Bus
from contactcentre.crm.screenpop import ScreenPop
from contactcentre.routing.models import Direction, LiveCall, OutboundAttempt
from contactcentre.routing.service import QueueRouter, RoutingError


class RecordingNotifier:
    def __init__(self):
        self.sent = []

    def agent_state(self, agent):
        self.sent.append(("state", agent.agent_id, agent.state))

    def call_offered(self, agent, call):
        self.sent.append(("pop", agent.agent_id, call.call_id))

    def call_state(self, agent, call_id, state, reason=""):
        self.sent.append(("call", agent.agent_id, state))


def make_router(clock):
    return QueueRouter(Bus(), writer=None, notifier=RecordingNotifier(), queue="support",
                       dispositions=("resolved",), clock=clock)


async def test_the_longest_idle_agent_gets_the_call():
    now = [100.0]
    router = make_router(lambda: now[0])
    for agent_id in (1, 2, 3):
        router.agent_login(agent_id, f"a{agent_id}", f"A{agent_id}", f"PJSIP/agent{agent_id}")
    for agent_id in (2, 3, 1):  # agent 2 has been ready longest
        now[0] += 1
        router.agent_ready(agent_id)
    call = router.enqueue("c1", ScreenPop("+441632960101", "", None))
    assert call.assigned.result().agent_id == 2
    assert router.agents[2].state == "reserved"
    second = router.enqueue("c2", ScreenPop("+441632960102", "", None))
    assert second.assigned.result().agent_id == 3


async def test_a_call_waits_when_nobody_is_ready_and_goes_to_the_first_agent_who_is():
    router = make_router(lambda: 1.0)
    router.agent_login(1, "a", "A", "PJSIP/agent1")
    call = router.enqueue("c1", ScreenPop("+441632960101", "", None))
    assert not call.assigned.done()
    router.agent_ready(1)
    assert call.assigned.result().agent_id == 1


async def test_a_phone_that_rings_out_pauses_the_agent_and_the_call_goes_back_first():
    router = make_router(lambda: 1.0)
    router.agent_login(1, "a", "A", "PJSIP/agent1")
    router.agent_login(2, "b", "B", "PJSIP/agent2")
    router.agent_ready(1)
    call = router.enqueue("c1", ScreenPop("+441632960101", "", None))
    later = router.enqueue("c2", ScreenPop("+441632960102", "", None))
    router.requeue_first(call)
    assert router.agents[1].state == "paused" and router.agents[1].pause_reason == "no answer"
    router.agent_ready(2)
    assert call.assigned.result().agent_id == 2
    assert not later.assigned.done()


async def test_states_that_make_no_sense_are_refused():
    router = make_router(lambda: 1.0)
    router.agent_login(1, "a", "A", "PJSIP/agent1")
    with pytest.raises(RoutingError) as caught:
        await router.submit_disposition(1, "c1", "resolved", "")
    assert caught.value.error_id == "not-your-call"
    router.agent_ready(1)
    router.enqueue("c1", ScreenPop("+441632960101", "", None))
    with pytest.raises(RoutingError, match="cannot pause while reserved"):
        router.agent_pause(1, "lunch")


def callback_call(call_id: str) -> LiveCall:
    return LiveCall(call_id, None, ScreenPop("+441632960101", "", None), 1.0, direction=Direction.OUTBOUND,
                    outbound=OutboundAttempt("+441632960101", "callback", callback_id=1))


async def test_a_callback_goes_to_a_free_agent_only_while_no_caller_waits():
    router = make_router(lambda: 1.0)
    router.agent_login(1, "a", "A", "PJSIP/agent1")
    router.agent_login(2, "b", "B", "PJSIP/agent2")
    waiting = router.enqueue("c1", ScreenPop("+441632960102", "", None))
    router.agent_ready(1)  # takes the waiting caller
    assert waiting.assigned.result().agent_id == 1
    router.enqueue("c2", ScreenPop("+441632960103", "", None))
    assert router.free_for_outbound == 0 and router.offer_outbound(callback_call("cb1")) is None
    router.agent_ready(2)  # takes the second caller: still nobody free
    assert router.offer_outbound(callback_call("cb2")) is None


async def test_an_agents_own_call_starts_from_ready_or_not_ready_and_leaves_the_queue():
    router = make_router(lambda: 1.0)
    router.agent_login(1, "a", "A", "PJSIP/agent1")
    router.agent_ready(1)
    outbound = callback_call("out1")
    router.dial_out(1, outbound)
    assert router.agents[1].state == "dialling" and router.free_for_outbound == 0
    caller = router.enqueue("c1", ScreenPop("+441632960102", "", None))
    assert not caller.assigned.done()  # a dialling agent is offered no inbound call
    with pytest.raises(RoutingError, match="cannot dial while dialling"):
        router.dial_out(1, callback_call("out2"))
