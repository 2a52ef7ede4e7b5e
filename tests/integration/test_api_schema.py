"""The OpenAPI file against the running server: schemathesis sends what the file allows (and, in a second pass,
what it forbids) to every operation over a real socket, logged in as an admin, and checks that nothing answers
5xx and that every answer is one the file describes, in status, content type, headers and body.

Schemathesis calls with `requests`, which blocks: it runs in a worker thread while the event loop serves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contactcentre.crm.models import (
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    InteractionLeg,
    Role,
    ServiceTier,
    SurveyResponse,
    Ticket,
    TicketEvent,
    Transaction,
)
from tests.support import start_stack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Examples per operation and mode: enough to reach every branch of the bodies' checks, few enough that the
# 28 operations in two modes stay within seconds.
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 12, schemathesis.GenerationMode.NEGATIVE: 8}
DAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def seed(sessions, agent_id: int) -> None:
    """Records of every kind with small ids, where the generated ids land."""
    async with sessions() as session, session.begin():
        for n in range(1, 4):
            customer = Customer(account_number=f"AC-{n}", first_name="Jo", last_name=f"Doe{n}", created_at=DAY,
                                tier=ServiceTier.BASIC, lifetime_value=Decimal("12.50"))
            session.add(customer)
            await session.flush()
            session.add_all([
                ContactPoint(customer_id=customer.id, kind="phone", value=f"+44163296010{n}", is_primary=True),
                Transaction(customer_id=customer.id, kind="order", reference=f"ORD-{n}", amount=Decimal("9.99"),
                            currency="GBP", occurred_at=DAY, items=[{"sku": "A"}]),
                Interaction(call_id=f"c{n}", customer_id=customer.id, agent_id=agent_id, arrived_at=DAY,
                            ended_at=DAY + timedelta(minutes=3), timeline=[[0, "Newchannel", "PJSIP/trunk-1"]]),
                Ticket(customer_id=customer.id, subject="router", created_at=DAY, updated_at=DAY,
                       resolve_due=DAY + timedelta(days=1)),
                Consent(customer_id=customer.id, purpose="survey", channel="phone", granted=True, at=DAY,
                        source="ivr"),
            ])
            await session.flush()
            session.add_all([
                InteractionLeg(call_id=f"c{n}", agent_device="PJSIP/agent1", agent_id=agent_id, joined_at=DAY),
                SurveyResponse(customer_id=customer.id, call_id=f"c{n}", question="csat", score=4, answered_at=DAY),
                TicketEvent(ticket_id=n, at=DAY, field="status", new_value="open"),
            ])


def run_schemathesis(base_url: str, cookie: str) -> list[str]:
    """Every operation in both modes; the failures found, as schemathesis reports them."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.yaml")  # the file as the server serves it
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                case.call_and_validate(base_url=base_url, headers={"Cookie": cookie}, checks=CHECKS)

            try:
                call()
            except Exception as exc:  # each failure is collected, so one run reports them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


async def test_every_operation_answers_as_the_openapi_file_says(aiohttp_server, database_url):
    stack = await start_stack(aiohttp_server, database_url)
    admin = await stack.add_agent("ada", "PJSIP/agent1", Role.ADMIN)
    await seed(stack.services.sessions, admin.id)
    cookie = await stack.cookie("ada")
    failures = await asyncio.to_thread(run_schemathesis, stack.base_url.rstrip("/"), cookie)
    assert failures == [], "\n\n".join(failures)
