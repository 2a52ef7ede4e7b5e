"""Click to dial, the refusal's reason, the suggested offer and a callback, in a real browser."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from contactcentre.crm.models import Callback, Customer, ServiceTier
from tests.browser.test_agent_console import sign_in_and_go_ready
from tests.support import (
    PASSWORD,
    add_consent,
    add_customer,
    add_do_not_call,
    add_open_ticket,
    new_interactions,
    until,
)

pytestmark = pytest.mark.browser
JANE = "+441632960101"


async def jane(stack, *, marketing: bool) -> Customer:
    sessions = stack.services.sessions
    customer = await add_customer(sessions, "Jane", "Smith", JANE, ServiceTier.BASIC,
                                  notes=("Router dropped twice.",))
    async with sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == customer.id)
                              .values(churn_risk=True, lifetime_value=Decimal("820.00")))
    await add_open_ticket(sessions, customer.id, "router keeps dropping")
    if marketing:
        await add_consent(sessions, customer.id, "marketing", True)
    return customer


async def test_agent_dials_a_customer_sees_the_offer_talks_and_wraps_up(stack, page):
    customer = await jane(stack, marketing=True)
    agent = await stack.add_agent("alice", "PJSIP/agent1", name="Alice Agent")
    stack.sim.customer_answer = None
    await sign_in_and_go_ready(page, "alice", PASSWORD)

    await page.get_by_label("Number", exact=True).fill("01632 960101")
    await page.get_by_role("button", name="Call", exact=True).click()

    await expect(page.locator("#pop-outbound")).to_have_text(f"Outbound call to {JANE}")
    await expect(page.locator("#pop-name")).to_have_text("Jane Smith")
    await expect(page.locator("#call-state")).to_have_text("calling your phone")
    await expect(page.locator("#state")).to_have_text("dialling")
    await expect(page.get_by_role("heading", name="Suggested offer")).to_be_visible()
    await expect(page.locator("#pop-offer-title")).to_have_text("Loyalty discount: 15% off the next 12 months")
    await expect(page.locator("#pop-offer-why")).to_have_text(
        "flagged as a churn risk, and has spent 500 or more with us")
    await page.get_by_role("button", name="Answer").click()  # the desk phone picks up
    await expect(page.locator("#call-state")).to_have_text("calling the customer")
    await until(lambda: any(n.startswith("PJSIP/carrier-") for n in stack.sim.channels))
    stack.sim.answer(next(n for n in stack.sim.channels if n.startswith("PJSIP/carrier-")))
    await expect(page.locator("#call-state")).to_have_text("answered")
    await expect(page.locator("#state")).to_have_text("on a call")
    await page.get_by_role("button", name="Hang up").click()
    await page.get_by_label("Disposition").select_option("resolved")
    await page.get_by_label("Notes").fill("Offered the loyalty discount; accepted.")
    await page.get_by_role("button", name="Submit").click()

    await expect(page.locator("#state")).to_have_text("ready")
    await expect(page.get_by_role("heading", name="Last customer: Jane Smith")).to_be_visible()
    await until(lambda: not stack.sim.channels)
    await stack.services.bus.drain()
    [row] = await new_interactions(stack.services.sessions)
    assert (row.direction, row.caller_number, row.customer_id, row.agent_id, row.disposition) == (
        "outbound", JANE, customer.id, agent.id, "resolved")
    assert row.answered_at is not None


async def test_a_refused_number_shows_why_and_nothing_is_dialled(stack, page):
    await jane(stack, marketing=False)
    await add_do_not_call(stack.services.sessions, JANE, "asked on the phone")
    await stack.add_agent("alice", "PJSIP/agent1")
    await sign_in_and_go_ready(page, "alice", PASSWORD)

    await page.get_by_label("Number", exact=True).fill(JANE)
    await page.get_by_role("button", name="Call", exact=True).click()

    await expect(page.get_by_role("status")).to_have_text("Not dialled: on the do-not-call list (asked on the phone)")
    await expect(page.get_by_role("heading", name="No call")).to_be_visible()
    await expect(page.locator("#state")).to_have_text("ready")
    assert stack.sim.channels == {}


async def test_no_offer_without_marketing_consent_and_a_callback_scheduled_from_the_pop(stack, page):
    customer = await jane(stack, marketing=False)
    await stack.add_agent("alice", "PJSIP/agent1")
    await sign_in_and_go_ready(page, "alice", PASSWORD)
    call = stack.sim.place_call(JANE, "Jane Smith")

    await expect(page.locator("#pop-name")).to_have_text("Jane Smith")
    await expect(page.locator("#pop-phones")).to_have_text(JANE)
    await expect(page.get_by_role("heading", name="Suggested offer")).to_be_hidden()
    await expect(page.get_by_label("Callback number")).to_have_value(JANE)
    when = datetime.now() + timedelta(days=3)  # the browser and this test share the machine's time zone
    await page.get_by_label("When").fill(when.strftime("%Y-%m-%dT10:30"))
    await page.get_by_label("Callback note").fill("Check the engineer came.")
    await page.get_by_role("button", name="Schedule callback").click()

    await expect(page.get_by_role("status")).to_contain_text("Callback scheduled for")
    async with stack.services.sessions() as session:
        callbacks = (await session.scalars(select(Callback))).all()
    stored = callbacks[0].due_at  # SQLite gives back UTC without its zone
    local_due = (stored if stored.tzinfo else stored.replace(tzinfo=UTC)).astimezone().replace(tzinfo=None)
    assert [(c.customer_id, c.number, c.note) for c in callbacks] == [(customer.id, JANE, "Check the engineer came.")]
    assert local_due == when.replace(hour=10, minute=30, second=0, microsecond=0)
    call.caller_hangup()
    await asyncio.wait_for(call.finished.wait(), 5)
