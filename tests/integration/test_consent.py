"""The consent rules each purpose follows (crm/consent.py, docs/OUTBOUND.md), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from contactcentre.crm.consent import DialRefused, Purpose, check_dial
from contactcentre.crm.models import Interaction, ServiceTier
from tests.support import add_consent, add_customer, add_do_not_call, add_open_ticket

JANE, JOHN = "+441632960101", "+441632960102"


@pytest.fixture
async def customers(sessions):
    jane = await add_customer(sessions, "Jane", "Smith", JANE, ServiceTier.BASIC)
    john = await add_customer(sessions, "John", "Doe", JOHN, ServiceTier.BASIC)
    return sessions, jane, john


async def refusal(sessions, number: str, purpose: str, **kwargs) -> str:
    async with sessions() as session:
        with pytest.raises(DialRefused) as refused:
            await check_dial(session, number, purpose, **kwargs)
    return refused.value.reason


async def permit(sessions, number: str, purpose: str, **kwargs):
    async with sessions() as session:
        return await check_dial(session, number, purpose, **kwargs)


async def test_a_service_call_needs_an_open_matter_and_no_consent_row(customers):
    sessions, jane, _ = customers
    assert await refusal(sessions, JANE, "service") == (
        "customer AC-960101 has no open ticket and no contact in the last 7 days: a service call needs an open matter")
    await add_open_ticket(sessions, jane.id, "router keeps dropping")
    allowed = await permit(sessions, JANE, "service")
    assert (allowed.customer_id, allowed.purpose) == (jane.id, Purpose.SERVICE)


async def test_a_recent_contact_is_an_open_matter_and_an_old_one_is_not(customers):
    sessions, jane, _ = customers
    async with sessions() as session, session.begin():
        session.add(Interaction(call_id="dropped", customer_id=jane.id, caller_number=JANE,
                                arrived_at=datetime.now(UTC) - timedelta(days=2)))
    assert (await permit(sessions, JANE, "service")).customer_id == jane.id
    assert "no contact in the last 1 days" in await refusal(sessions, JANE, "service", recent_contact=timedelta(days=1))
    async with sessions() as session, session.begin():
        await session.execute(update(Interaction).values(arrived_at=datetime.now(UTC) - timedelta(days=30)))
    assert "needs an open matter" in await refusal(sessions, JANE, "service")


async def test_an_objection_stops_service_and_callback_calls_until_the_customer_agrees_again(customers):
    sessions, jane, _ = customers
    await add_open_ticket(sessions, jane.id, "refund")
    day = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    await add_consent(sessions, jane.id, "service", False, at=day, source="ivr")
    await add_consent(sessions, jane.id, "callback", False, at=day, source="web form")
    assert await refusal(sessions, JANE, "service") == (
        "customer AC-960101 objected to service calls by phone on 2026-11-20 (ivr)")
    assert "objected to callback calls by phone on 2026-11-20 (web form)" in await refusal(sessions, JANE, "callback")
    await add_consent(sessions, jane.id, "service", True, at=day + timedelta(days=1))
    assert (await permit(sessions, JANE, "service")).customer_id == jane.id


async def test_a_callback_is_its_own_matter_and_needs_no_ticket(customers):
    sessions, jane, _ = customers
    assert (await permit(sessions, JANE, "callback")).customer_id == jane.id


async def test_marketing_needs_a_yes_and_the_latest_answer_counts(customers):
    sessions, jane, _ = customers
    await add_open_ticket(sessions, jane.id, "upgrade")  # an open matter is no consent to marketing
    assert await refusal(sessions, JANE, "marketing") == "customer AC-960101 has not consented to marketing calls by phone"
    day = datetime(2026, 11, 1, tzinfo=UTC)
    await add_consent(sessions, jane.id, "marketing", True, at=day)
    assert (await permit(sessions, JANE, "marketing")).purpose is Purpose.MARKETING
    await add_consent(sessions, jane.id, "marketing", False, at=day + timedelta(days=3))
    assert "has not consented to marketing" in await refusal(sessions, JANE, "marketing")


async def test_do_not_call_blocks_every_purpose_whatever_was_agreed(customers):
    sessions, jane, _ = customers
    await add_open_ticket(sessions, jane.id, "refund")
    for purpose in ("marketing", "survey", "service", "callback"):
        await add_consent(sessions, jane.id, purpose, True)
    await add_do_not_call(sessions, JANE, "asked on the phone")
    for purpose in Purpose:
        assert await refusal(sessions, JANE, purpose.value) == "on the do-not-call list (asked on the phone)"


async def test_only_a_customers_own_number_is_dialled_and_only_for_that_customer(customers):
    sessions, jane, john = customers
    await add_open_ticket(sessions, jane.id, "refund")
    assert await refusal(sessions, "+441632960999", "service") == (
        "no customer holds this number, and service calls go only to a customer's own number")
    assert await refusal(sessions, JOHN, "callback", customer_id=jane.id) == "it is not one of this customer's numbers"
    assert (await permit(sessions, JANE, "service", customer_id=jane.id)).customer_id == jane.id


async def test_a_purpose_that_is_not_one_is_refused_by_name(customers):
    sessions, _, _ = customers
    assert "'cold-call' is not a purpose calls are made for" in await refusal(sessions, JANE, "cold-call")
