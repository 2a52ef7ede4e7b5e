"""The post-call survey end to end: the server and the PBX simulator over real sockets.

The agent hangs up; the simulated caller, still on the line (the Dial's g
option), hears the survey and keys its answers; they land as SurveyResponse
rows and on the interaction. Who is asked, retries, hang-ups mid-survey, hold
and transfers are each a test.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contactcentre.app import create_app
from contactcentre.crm.models import Consent, Interaction, ServiceTier, SurveyResponse
from contactcentre.crm.privacy import erase_customer, export_customer
from contactcentre.crm.seed import seed_customers
from contactcentre.crm.store import create_engine, session_factory, upgrade
from contactcentre.telephony.commands import PbxCommands
from contactcentre.telephony.simulator.channels import HANG_UP
from contactcentre.web.keys import SERVICES
from tests.support import Stack, add_customer, sqlite_url, stack_settings, start_stack, stored_text, until

ANSWER_TIMEOUT = 0.3  # seconds a simulated caller who presses nothing keeps the survey waiting per try
JANE = "+441632960101"


async def survey_stack(aiohttp_server, database_url: str, **overrides):
    return await start_stack(aiohttp_server, database_url, survey={"answer_timeout": ANSWER_TIMEOUT}, **overrides)


@pytest.fixture
async def stack(aiohttp_server, tmp_path):
    stack = await survey_stack(aiohttp_server, sqlite_url(tmp_path))
    yield stack
    await stack.close_consoles()


async def customer(stack, phone: str = JANE, consents: tuple[tuple[str, bool], ...] = (("phone", True),)):
    """A customer on `phone` whose survey consents are `consents` ((channel, granted), oldest first)."""
    found = await add_customer(stack.services.sessions, "Jane", "Smith", phone, ServiceTier.BASIC)
    start = datetime.now(UTC) - timedelta(days=30)
    async with stack.services.sessions() as session, session.begin():
        session.add_all([Consent(customer_id=found.id, purpose="survey", channel=channel, granted=granted,
                                 at=start + timedelta(days=n), source="agent")
                         for n, (channel, granted) in enumerate(consents)])
    return found


def agi_commands(stack, call) -> list[str]:
    """Every FastAGI command the caller's channel ran, as AGIExecStart names them, from now on."""
    seen: list[str] = []

    def tap(name, headers):
        values = dict(headers)
        if name == "AGIExecStart" and values.get("Uniqueid") == call.caller.uniqueid:
            seen.append(values["Command"])

    stack.sim.taps.append(tap)
    return seen


async def agent_takes_call(stack, username: str, device: str, number: str, keys: list[str]):
    """An agent goes ready, a caller with `keys` calls and is answered; returns (console, call, pop)."""
    await stack.add_agent(username, device)
    console = await stack.console(username)
    await console.wait_state("paused")
    assert (await console.call("ready"))["ok"]
    call = stack.sim.place_call(number, "Jane Smith", keys=keys)
    pop = await console.next("screen_pop")
    assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await asyncio.wait_for(call.bridged.wait(), 5)
    return console, call, pop


async def talk_then_agent_hangs_up(stack, number: str = JANE, keys: list[str] = ()):
    """A call answered by agent1 who then hangs up; returns (console, call, pop, AGI commands after that)."""
    console, call, pop = await agent_takes_call(stack, "alice", "PJSIP/agent1", number, list(keys))
    commands = agi_commands(stack, call)
    assert (await console.call("hangup", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_state("wrap_up")
    return console, call, pop, commands


async def answers(stack, call_id: str) -> tuple[dict, dict | None]:
    """({question: (score, customer_id)} of the SurveyResponse rows, the interaction's survey) of a call."""
    await stack.services.bus.drain()
    async with stack.services.sessions() as session:
        rows = (await session.scalars(select(SurveyResponse).where(SurveyResponse.call_id == call_id))).all()
        survey = await session.scalar(select(Interaction.survey).where(Interaction.call_id == call_id))
    return {row.question: (row.score, row.customer_id) for row in rows}, survey


def asked(commands: list[str]) -> list[str]:
    """The survey prompts the caller heard, in order (GET DATA's and STREAM FILE's sound files)."""
    return [command.split()[2] for command in commands if command.startswith(("GET DATA", "STREAM FILE"))]


async def test_consenting_caller_answers_and_the_scores_are_stored(aiohttp_server, database_url):
    stack = await survey_stack(aiohttp_server, database_url)
    jane = await customer(stack)
    console, call, pop, commands = await talk_then_agent_hangs_up(stack, keys=["4", "1"])

    reply = await console.call("disposition", {"call_id": pop["call_id"], "disposition": "resolved",
                                               "notes": "Reset the router."})
    await asyncio.wait_for(call.finished.wait(), 5)

    assert reply == {"ok": True}  # the agent's wrap-up goes on beside the caller's survey
    assert asked(commands) == ["custom/survey-intro", "custom/survey-agent", "custom/survey-solved",
                               "custom/survey-thanks"]
    rows, survey = await answers(stack, call.call_id)
    assert rows == {"agent": (4, jane.id), "solved": (1, jane.id)}
    assert survey == {"agent": 4, "solved": 1}
    async with stack.services.sessions() as session:
        row = await session.scalar(select(Interaction).where(Interaction.call_id == call.call_id))
    assert (row.customer_id, row.disposition, row.notes) == (jane.id, "resolved", "Reset the router.")
    assert row.answered_at is not None and row.ended_at is not None
    assert stack.sim.truth[call.call_id].answered_by == "PJSIP/agent1"
    bundle = await export_customer(stack.services.sessions, jane.id, None)  # the customer's record shows them
    assert [i["survey"] for i in bundle["interactions"] if i["call_id"] == call.call_id] == [survey]
    assert sorted((r["question"], r["score"], r["call_id"]) for r in bundle["survey_responses"]) == [
        ("agent", 4, call.call_id), ("solved", 1, call.call_id)]
    await stack.close_consoles()


@pytest.mark.parametrize("consents", [(), (("phone", True), ("phone", False)), (("email", True),)],
                         ids=["never-asked", "withdrawn", "email-only"])
async def test_a_customer_without_survey_consent_by_phone_hears_no_survey(stack, consents):
    await customer(stack, consents=consents)
    _, call, _, commands = await talk_then_agent_hangs_up(stack, keys=["4", "1"])

    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == []
    assert await answers(stack, call.call_id) == ({}, None)


async def test_an_unknown_caller_hears_no_survey(stack):
    _, call, _, commands = await talk_then_agent_hangs_up(stack, "+12025550143", keys=["4", "1"])

    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == []
    assert await answers(stack, call.call_id) == ({}, None)


async def test_a_key_that_is_no_answer_is_asked_once_more(stack):
    await customer(stack)
    _, call, _, commands = await talk_then_agent_hangs_up(stack, keys=["9", "5", "*", "2"])

    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == ["custom/survey-intro", "custom/survey-agent", "custom/survey-invalid",
                               "custom/survey-agent", "custom/survey-solved", "custom/survey-invalid",
                               "custom/survey-solved", "custom/survey-thanks"]
    assert (await answers(stack, call.call_id))[1] == {"agent": 5, "solved": 2}


async def test_two_wrong_keys_leave_the_question_unanswered_and_the_next_is_asked(stack):
    await customer(stack)
    _, call, _, commands = await talk_then_agent_hangs_up(stack, keys=["9", "0", "1"])

    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands).count("custom/survey-agent") == 2
    rows, survey = await answers(stack, call.call_id)
    assert survey == {"solved": 1} and set(rows) == {"solved"}


async def test_a_caller_hanging_up_mid_survey_keeps_the_answers_given(stack):
    await customer(stack)
    _, call, _, commands = await talk_then_agent_hangs_up(stack, keys=["5", HANG_UP])

    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == ["custom/survey-intro", "custom/survey-agent", "custom/survey-solved"]
    rows, survey = await answers(stack, call.call_id)
    assert survey == {"agent": 5} and set(rows) == {"agent"}
    assert stack.services.agi.protocol_errors == 0  # a hang-up is no protocol error


async def test_a_caller_who_presses_nothing_is_asked_twice_then_let_go(stack):
    await customer(stack)
    _, call, _, commands = await talk_then_agent_hangs_up(stack, keys=[])

    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == ["custom/survey-intro", "custom/survey-agent", "custom/survey-invalid",
                               "custom/survey-agent", "custom/survey-thanks"]
    assert await answers(stack, call.call_id) == ({}, None)


async def test_a_conversation_longer_than_the_agi_command_timeout_still_ends_in_the_survey(aiohttp_server, tmp_path):
    stack = await survey_stack(aiohttp_server, sqlite_url(tmp_path), agi={"host": "127.0.0.1", "port": 0,
                                                                         "command_timeout": 0.5})
    await customer(stack)
    console, call, pop = await agent_takes_call(stack, "alice", "PJSIP/agent1", JANE, ["3", "2"])
    await asyncio.sleep(1.0)  # twice the command timeout, inside one EXEC Dial

    assert (await console.call("hangup", {"call_id": pop["call_id"]}))["ok"]
    await asyncio.wait_for(call.finished.wait(), 5)

    assert (await answers(stack, call.call_id))[1] == {"agent": 3, "solved": 2}
    assert stack.services.agi.protocol_errors == 0
    await stack.close_consoles()


async def test_a_held_and_resumed_call_is_surveyed_through_the_survey_entry(stack):
    jane = await customer(stack)
    console, call, pop = await agent_takes_call(stack, "alice", "PJSIP/agent1", JANE, ["2", "1"])
    pbx = PbxCommands(stack.services.ami)
    held = await pbx.hold(call.caller.name)
    await until(lambda: call.moh)
    await pbx.resume(held)
    await until(lambda: not call.moh and call.agent is not None)
    commands = agi_commands(stack, call)

    stack.sim.phone_hangup(call.agent.name)  # the agent's phone: Bridge(..., F(cc-survey^s^1)) moves the caller
    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == ["custom/survey-intro", "custom/survey-agent", "custom/survey-solved",
                               "custom/survey-thanks"]
    assert await answers(stack, call.call_id) == ({"agent": (2, jane.id), "solved": (1, jane.id)},
                                                  {"agent": 2, "solved": 1})
    await console.wait_state("wrap_up")


async def test_the_survey_entry_lets_go_of_a_channel_that_is_no_call_of_the_router(stack):
    events: list[tuple[str, str, str]] = []
    stack.sim.taps.append(lambda name, headers: events.append(
        (name, dict(headers).get("Channel", ""), f"{dict(headers).get('Variable')}={dict(headers).get('Value')}")))
    ringing = asyncio.create_task(PbxCommands(stack.services.ami).originate("PJSIP/agent2", context="cc-survey",
                                                                          exten="s"))
    await until(lambda: any(c.device == "PJSIP/agent2" for c in stack.sim.channels.values()))
    stack.sim.answer(next(c.name for c in stack.sim.channels.values() if c.device == "PJSIP/agent2"))
    made = await ringing

    await until(lambda: any(e[:2] == ("Hangup", made.channel) for e in events))

    ran = [(name, what) for name, channel, what in events if channel == made.channel]
    assert ("VarSet", "AGISTATUS=SUCCESS") in ran  # the server took the session and ended it
    assert not [name for name, _ in ran if name == "AGIExecStart"]  # having asked nothing: no call, no survey
    assert stack.services.agi.protocol_errors == 0


async def test_a_blind_transferred_call_ends_without_a_survey(stack):
    await customer(stack)
    _, call, _ = await agent_takes_call(stack, "alice", "PJSIP/agent1", JANE, ["4", "1"])
    commands = agi_commands(stack, call)
    await PbxCommands(stack.services.ami).blind_transfer(call.agent.name, "xfer", "2003")
    await until(lambda: call.agent is not None and call.agent.device == "PJSIP/agent3")
    stack.sim.answer(call.agent.name)
    await until(lambda: "PJSIP/agent3" in stack.sim.truth[call.call_id].talked_to)

    stack.sim.phone_hangup(call.agent.name)  # xfer's Dial() has no g: the caller's dialplan ends with it
    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands) == []
    assert await answers(stack, call.call_id) == ({}, None)


async def test_an_attended_transfer_keeps_the_caller_in_its_dial_and_the_survey_follows(stack):
    await customer(stack)
    _, call, _ = await agent_takes_call(stack, "alice", "PJSIP/agent1", JANE, ["5", "1"])
    first = call.agent.name
    await PbxCommands(stack.services.ami).attended_transfer(first, "2003")
    await until(lambda: any(c.device == "PJSIP/agent3" for c in stack.sim.channels.values()))
    stack.sim.answer(next(c.name for c in stack.sim.channels.values() if c.device == "PJSIP/agent3"))
    await until(lambda: any(c.device == "PJSIP/agent3" and c.bridge for c in stack.sim.channels.values()))
    stack.sim.phone_hangup(first)  # completes the transfer: agent3 now talks to the caller
    await until(lambda: call.agent is not None and call.agent.device == "PJSIP/agent3")
    commands = agi_commands(stack, call)

    stack.sim.phone_hangup(call.agent.name)
    await asyncio.wait_for(call.finished.wait(), 5)

    assert asked(commands)[:2] == ["custom/survey-intro", "custom/survey-agent"]
    assert (await answers(stack, call.call_id))[1] == {"agent": 5, "solved": 1}


async def test_erasure_removes_the_surveyed_callers_personal_data_and_keeps_the_scores(stack):
    jane = await customer(stack)
    _, call, _, _ = await talk_then_agent_hangs_up(stack, keys=["4", "2"])
    await asyncio.wait_for(call.finished.wait(), 5)
    await stack.services.bus.drain()

    await erase_customer(stack.services.sessions, jane.id, None, "erasure request ER-7")

    assert not [value for value in await stored_text(stack.services.sessions) if JANE in value or "Smith" in value]
    assert await answers(stack, call.call_id) == ({"agent": (4, jane.id), "solved": (2, jane.id)},
                                                  {"agent": 4, "solved": 2})


async def test_demo_callers_answer_the_survey_with_their_keypad(aiohttp_server, tmp_path):
    url = sqlite_url(tmp_path)
    await upgrade(url)
    engine = create_engine(url)
    await seed_customers(session_factory(engine), 30)  # about two in three agree to surveys
    await engine.dispose()
    app = create_app(stack_settings(url, survey={"answer_timeout": ANSWER_TIMEOUT},
                                    simulator={"ami_port": 0, "calls_per_minute": 120.0, "unknown_caller_share": 0.0,
                                               "talk_limit": 120.0, "patience": 120.0}), demo_traffic=True)
    server = await aiohttp_server(app)
    stack = Stack(str(server.make_url("/")), app[SERVICES], app)
    await stack.services.ami.wait_connected(5)
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    await console.wait_state("paused")

    async def surveyed() -> int:
        await stack.services.bus.drain()
        async with stack.services.sessions() as session:
            return len((await session.scalars(select(SurveyResponse.id))).all())

    assert (await console.call("ready"))["ok"]  # after each disposition the agent is ready again by itself
    for _ in range(20):  # calls taken one after another until demo callers have answered
        pop = await console.next("screen_pop", timeout=10)
        assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]
        await console.wait_call_state("answered")
        assert (await console.call("hangup", {"call_id": pop["call_id"]}))["ok"]
        await console.wait_state("wrap_up")
        assert (await console.call("disposition", {"call_id": pop["call_id"], "disposition": "resolved",
                                                   "notes": ""}))["ok"]
        await until(lambda: pop["call_id"] not in stack.sim.calls, timeout=10)  # the caller's survey is over
        if await surveyed() >= 4:
            break
    assert await surveyed() >= 4
    await stack.close_consoles()
