"""Callbacks end to end: scheduled over REST or the console (consent checked), offered to a ready agent
when due (consent checked again), dialled agent first, each try's result kept and retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import select

from contactcentre.crm.models import AuditLog, Callback, CallbackStatus, Role, ServiceTier
from tests.support import (
    add_consent,
    add_customer,
    add_do_not_call,
    new_interactions,
    start_stack,
    until,
)

JANE = "+441632960101"


@pytest.fixture
async def cb_stack(aiohttp_server, database_url):
    """The stack on both databases, with a dialler that looks every 0.1 s and retries after 1 s."""
    stack = await start_stack(aiohttp_server, database_url,
                              callbacks={"poll_interval": 0.1, "retry_after": 1.0, "max_attempts": 2})
    stack.jane = await add_customer(stack.services.sessions, "Jane", "Smith", JANE, ServiceTier.BASIC)
    await stack.add_agent("alice", "PJSIP/agent1", name="Alice Agent")
    yield stack
    await stack.close_consoles()


async def post(stack, username: str | None, body: object) -> tuple[int, dict]:
    cookie = {"Cookie": await stack.cookie(username)} if username else {}
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{stack.base_url}api/callbacks", json=body, headers=cookie)
        return response.status, await response.json()


async def get(stack, username: str, query: str = "") -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{stack.base_url}api/callbacks{query}",
                                  headers={"Cookie": await stack.cookie(username)})
        return response.status, await response.json()


def soon(seconds: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def callback_row(stack, callback_id: int) -> Callback:
    async with stack.services.sessions() as session:
        return await session.get(Callback, callback_id)


async def wait_for(stack, callback_id: int, predicate, timeout: float = 10.0) -> Callback:
    found: list[Callback] = []

    async def check() -> bool:
        found[:] = [await callback_row(stack, callback_id)]
        return predicate(found[0])

    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)
    return found[0]


async def test_an_agent_schedules_a_callback_over_rest_and_it_is_stored_and_audited(cb_stack):
    when = soon(3600)
    status, body = await post(cb_stack, "alice", {"number": "01632 960101", "due_at": when,
                                                  "note": "Check the refund went through."})

    assert status == 201, body
    callback = body
    assert (callback["number"], callback["customer_id"], callback["status"], callback["attempts"],
            callback["max_attempts"], callback["note"]) == (JANE, cb_stack.jane.id, "scheduled", 0, 2,
                                                            "Check the refund went through.")
    assert datetime.fromisoformat(callback["due_at"]) == datetime.fromisoformat(when)
    async with cb_stack.services.sessions() as session:
        audit = (await session.scalars(select(AuditLog))).all()
    assert [(a.action, a.entity, a.entity_id) for a in audit] == [("create", "customer", str(cb_stack.jane.id))]
    assert audit[0].reason.startswith(f"POST /api/callbacks: callback {callback['id']} scheduled for ")


async def test_scheduling_refuses_do_not_call_and_bad_fields_by_name(cb_stack):
    await add_do_not_call(cb_stack.services.sessions, JANE, "complained")

    assert await post(cb_stack, "alice", {"number": JANE, "due_at": soon()}) == (403, {
        "error": f"{JANE} may not be dialled: on the do-not-call list (complained)", "id": "dial-refused",
        "reason": "on the do-not-call list (complained)"})
    for body, message in [
        ({"due_at": soon()}, "number: required"),
        ({"number": 44, "due_at": soon()}, "number: expected a string, got int"),
        ({"number": "call me", "due_at": soon()}, "number: 'call me' is not a phone number"),
        ({"number": JANE}, "due_at: required"),
        ({"number": JANE, "due_at": "tomorrow"}, "due_at: 'tomorrow' is not an ISO date and time"),
        ({"number": JANE, "due_at": soon(400 * 86400)}, "due_at: at most 366 days ahead"),
        ({"number": JANE, "due_at": soon(), "note": "x" * 1001}, "note: expected 1 to 1000 characters"),
        ({"number": JANE, "due_at": soon(), "customer_id": "7"}, "customer_id: expected a whole number, got str"),
        ({"number": JANE, "due_at": soon(), "when": "now"}, "when: unknown field"),
        ([JANE], "body: expected a JSON object"),
    ]:
        status, reply = await post(cb_stack, "alice", body)
        assert (status, reply["id"]) == (400, "bad-request") and reply["error"].startswith(message), reply
    async with cb_stack.services.sessions() as session:
        assert (await session.scalars(select(Callback))).all() == []


async def test_callbacks_are_for_agents_and_supervisors(cb_stack):
    await cb_stack.add_agent("sam", None, Role.SUPERVISOR)
    await cb_stack.add_agent("root", None, Role.ADMIN)
    assert (await post(cb_stack, None, {}))[0] == 401
    assert (await post(cb_stack, "root", {"number": JANE, "due_at": soon()}))[0] == 403
    status, body = await post(cb_stack, "sam", {"number": JANE, "due_at": soon(600)})
    assert status == 201 and body["requested_by"] is not None
    status, listing = await get(cb_stack, "sam", f"?status=scheduled&customer_id={cb_stack.jane.id}")
    assert status == 200 and [c["id"] for c in listing["entries"]] == [body["id"]]
    assert listing["total"] == 1
    assert (await get(cb_stack, "sam", "?status=lost"))[0] == 400
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{cb_stack.base_url}api/callbacks", headers={"Cookie": await cb_stack.cookie("root")})
        assert response.status == 403
    async with cb_stack.services.sessions() as session:
        searches = (await session.scalars(select(AuditLog).where(AuditLog.action == "search"))).all()
    assert [(s.entity, s.entity_id, s.reason) for s in searches] == [
        ("customer", str(cb_stack.jane.id), "GET /api/callbacks: callback search by status, customer_id; 1 of 1 shown")]


async def test_a_due_callback_pops_for_a_ready_agent_then_rings_agent_then_customer(cb_stack):
    console = await cb_stack.console("alice")
    await console.wait_state("paused")
    cb_stack.sim.customer_answer = 0.05
    status, body = await post(cb_stack, "alice", {"number": JANE, "due_at": soon(), "note": "Refund status"})
    assert status == 201
    assert (await console.call("ready"))["ok"]

    pop = await console.next("screen_pop")
    assert (pop["customer"]["name"], pop["outbound"]["callback_id"], pop["outbound"]["note"],
            pop["outbound"]["purpose"]) == ("Jane Smith", body["id"], "Refund status", "callback")
    await console.wait_state("reserved")
    assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]  # the agent picks up first
    await console.wait_state("dialling")
    await console.wait_call_state("answered")
    await console.wait_state("on_call")
    assert (await console.call("hangup", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_state("wrap_up")
    assert (await console.call("disposition", {"call_id": pop["call_id"], "disposition": "resolved"}))["ok"]

    done = await wait_for(cb_stack, body["id"], lambda c: c.status is CallbackStatus.DONE)
    assert (done.attempts, done.last_result, done.last_call_id) == (1, "answered", pop["call_id"])
    await cb_stack.services.bus.drain()
    [row] = await new_interactions(cb_stack.services.sessions)
    assert (row.call_id, row.direction, row.customer_id, row.disposition) == (
        pop["call_id"], "outbound", cb_stack.jane.id, "resolved")


@pytest.mark.parametrize("change", ["objection", "do-not-call"])
async def test_consent_withdrawn_after_scheduling_stops_the_callback_with_the_reason(cb_stack, change):
    console = await cb_stack.console("alice")
    await console.wait_state("paused")
    status, body = await post(cb_stack, "alice", {"number": JANE, "due_at": soon(0.5)})
    assert status == 201
    if change == "objection":
        await add_consent(cb_stack.services.sessions, cb_stack.jane.id, "callback", False, source="web form")
    else:
        await add_do_not_call(cb_stack.services.sessions, JANE, "asked by letter")
    assert (await console.call("ready"))["ok"]

    refused = await wait_for(cb_stack, body["id"], lambda c: c.status is CallbackStatus.REFUSED)

    assert refused.last_result == "refused" and refused.attempts == 0
    assert refused.last_reason == ("on the do-not-call list (asked by letter)" if change == "do-not-call" else
                                   f"customer AC-960101 objected to callback calls by phone on "
                                   f"{datetime.now(UTC).date().isoformat()} (web form)")
    assert "screen_pop" not in console.received  # no agent was offered it, nothing was dialled
    assert cb_stack.sim.channels == {}


async def test_a_callback_the_customer_does_not_take_is_retried_then_given_up(cb_stack):
    console = await cb_stack.console("alice")
    await console.wait_state("paused")
    cb_stack.sim.auto_answer = 0.05  # the agent's phone picks up by itself
    cb_stack.sim.customer_answer = None
    status, body = await post(cb_stack, "alice", {"number": JANE, "due_at": soon()})
    callback_id = body["id"]
    assert (await console.call("ready"))["ok"]

    for attempt in (1, 2):
        pop = await console.next("screen_pop")
        await console.wait_call_state("dialling")
        await until(lambda: any(n.startswith("PJSIP/carrier-") for n in cb_stack.sim.channels))
        customer = next(n for n in cb_stack.sim.channels if n.startswith("PJSIP/carrier-"))
        cb_stack.sim.phone_hangup(customer, 17)
        assert (await console.wait_call_state("unreached"))["reason"] == "the customer's line was busy"
        assert (await console.call("disposition", {"call_id": pop["call_id"], "disposition": "no-answer"}))["ok"]
        row = await wait_for(cb_stack, callback_id, lambda c, n=attempt: c.attempts == n)
        assert row.last_result == "busy" and row.last_call_id == pop["call_id"]
        if attempt == 1:
            assert row.status is CallbackStatus.SCHEDULED and row.due_at > row.last_attempt_at

    assert row.status is CallbackStatus.FAILED
    await cb_stack.services.bus.drain()
    assert len(await new_interactions(cb_stack.services.sessions)) == 2


async def test_an_agent_schedules_a_callback_from_the_console_for_the_customer_on_screen(cb_stack):
    console = await cb_stack.console("alice")
    await console.wait_state("paused")
    assert (await console.call("ready"))["ok"]
    call = cb_stack.sim.place_call(JANE, "Jane Smith")
    pop = await console.next("screen_pop")

    reply = await console.call("schedule_callback", {"number": pop["caller_number"], "due_at": soon(86400),
                                                     "note": "after the engineer's visit",
                                                     "customer_id": pop["customer"]["id"]})
    other = await console.call("schedule_callback", {"number": "+441632960999", "due_at": soon(86400)})
    bad = await console.call("schedule_callback", {"number": JANE, "due_at": "soon"})

    assert reply["ok"] and reply["callback"]["note"] == "after the engineer's visit"
    assert reply["callback"]["requested_by"] is not None
    assert other["id"] == "dial-refused" and other["reason"].startswith("no customer holds this number")
    assert (bad["id"], bad["error"]) == ("bad-request", "due_at: 'soon' is not an ISO date and time such as "
                                                       "2024-03-01T14:30:00Z")
    call.caller_hangup()


async def test_a_try_cut_short_by_a_stop_is_due_again_and_claimed_once(sessions):
    from contactcentre.crm.audit import Access
    from contactcentre.crm.callbacks import CallbackStore

    customer = await add_customer(sessions, "Jane", "Smith", JANE, ServiceTier.BASIC)
    store = CallbackStore(sessions, 3, timedelta(minutes=15))
    who = Access(None, "test")
    scheduled = await store.schedule(JANE, datetime.now(UTC) - timedelta(minutes=1), "after lunch", who)
    later = await store.schedule(JANE, datetime.now(UTC) + timedelta(hours=1), None, who)

    assert [c.id for c in await store.claim_due(5)] == [scheduled.id]  # only what is due
    assert await store.claim_due(5) == []  # being dialled: not handed out twice
    assert await store.release_stale() == 1  # the server stopped mid-try
    [again] = await store.claim_due(5)
    assert (again.id, again.customer_id, again.note) == (scheduled.id, customer.id, "after lunch")
    assert await store.record(again.id, "no-answer", "the customer did not answer", "cc-out-1") is \
        CallbackStatus.SCHEDULED
    assert later.status is CallbackStatus.SCHEDULED
