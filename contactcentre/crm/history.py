"""What has happened with customers: interactions, transactions and survey responses, read a page at a time,
and an ended call's wrap-up completed afterwards.

Calls are written by the interaction writer as they happen; afterwards a user
may add a note to an ended call, and a disposition where none was recorded
(an agent who logged out in wrap-up, a call the server lost track of). A
recorded disposition is never rewritten: the day's reports have counted it.
"""

from __future__ import annotations

from collections.abc import Container

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import selectinload

from contactcentre.crm.audit import Access
from contactcentre.crm.exceptions import Conflict, NotFound, Refused
from contactcentre.crm.models import Interaction, InteractionLeg, Queue, SurveyResponse, Transaction
from contactcentre.crm.records import Listing, existing_customer, record_access

MAX_NOTES = 100_000  # all of a call's notes together: pages of text, not a file


def _handled_by(agent_id: int):
    # the agent on the record, or any agent who talked to the caller before a transfer
    return or_(Interaction.agent_id == agent_id,
               Interaction.call_id.in_(select(InteractionLeg.call_id).where(InteractionLeg.agent_id == agent_id)))


INTERACTIONS = Listing("interaction", Interaction, (Interaction.arrived_at.desc(), Interaction.id.desc()), {
    "customer_id": lambda value: Interaction.customer_id == value,
    "agent_id": _handled_by,
    "queue": lambda value: Interaction.queue_id.in_(select(Queue.id).where(Queue.name == value)),
    "from": lambda value: Interaction.arrived_at >= value,
    "to": lambda value: Interaction.arrived_at < value,
    "disposition": lambda value: Interaction.disposition == value,
}, detail=(selectinload(Interaction.legs),))

TRANSACTIONS = Listing("transaction", Transaction, (Transaction.occurred_at.desc(), Transaction.id.desc()), {
    "customer_id": lambda value: Transaction.customer_id == value,
    "kind": lambda value: Transaction.kind == value,
    "reference": lambda value: Transaction.reference == value,
})

SURVEY_RESPONSES = Listing("survey_response", SurveyResponse,
                           (SurveyResponse.answered_at.desc(), SurveyResponse.id.desc()), {
    "customer_id": lambda value: SurveyResponse.customer_id == value,
    "question": lambda value: SurveyResponse.question == value,
    "call_id": lambda value: SurveyResponse.call_id == value,
})


async def complete_wrap_up(sessions: async_sessionmaker, interaction_id: int, disposition: str | None,
                           note: str | None, access: Access, *, live_calls: Container[str],
                           any_agent: bool) -> Interaction:
    """Add `note` to an ended call's notes and set its `disposition` if it has none.

    `live_calls` are the calls still ringing, talking or in wrap-up: their agent
    submits the disposition from the console, and the writer would overwrite
    ours. Without `any_agent` the user must have handled the call.
    """
    async with sessions() as session, session.begin():
        call = await session.scalar(select(Interaction).options(selectinload(Interaction.legs))
                                    .where(Interaction.id == interaction_id).with_for_update())
        if call is None:
            raise NotFound("interaction", interaction_id)
        if call.ended_at is None or call.call_id in live_calls:
            raise Conflict(f"call {call.call_id} is still in progress or in wrap-up: its agent submits the "
                           f"disposition from the console", "call-in-progress")
        if not any_agent and access.actor_id not in {call.agent_id, *(leg.agent_id for leg in call.legs)}:
            raise Refused(f"interaction {interaction_id} was not handled by you", "not-your-call")
        if call.customer_id is not None:
            await existing_customer(session, call.customer_id, for_change=True)  # no notes for the erased
        changed = _complete(call, disposition, note)
        await record_access(session, access, INTERACTIONS, call, "change", ", ".join(changed) or "nothing changed")
    return call


def _complete(call: Interaction, disposition: str | None, note: str | None) -> list[str]:
    changed = []
    if disposition is not None and disposition != call.disposition:
        if call.disposition is not None:
            raise Conflict(f"interaction {call.id} already has the disposition {call.disposition!r}",
                           "disposition-recorded")
        call.disposition = disposition
        changed.append("disposition")
    if note:
        notes = f"{call.notes}\n{note}" if call.notes else note
        if len(notes) > MAX_NOTES:
            raise Conflict(f"interaction {call.id} holds {len(call.notes or '')} characters of notes; "
                           f"at most {MAX_NOTES} in all", "notes-full")
        call.notes = notes
        changed.append("note")
    return changed
