"""What the post-call survey needs from the store: may this caller be asked, and keep each answer.

Asking needs the customer's latest consent for purpose "survey" on channel
"phone" to be a yes (consent.py: no answer is no). Answers go through the
interaction writer, so the call never waits for the store and a call's answers
land on its interaction (`survey`) and as one SurveyResponse row per question,
in order with the call's other writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.consent import consent_state
from contactcentre.crm.interactions import InteractionWriter

PURPOSE = "survey"
CHANNEL = "phone"


class SurveyStore:
    def __init__(self, sessions: async_sessionmaker, writer: InteractionWriter):
        self._sessions = sessions
        self._writer = writer

    async def consented(self, customer_id: int) -> bool:
        async with self._sessions() as session:
            return await consent_state(session, customer_id, PURPOSE, CHANNEL)

    def keep(self, call_id: str, arrived_at: datetime, customer_id: int, answers: dict[str, tuple[int, datetime]]
             ) -> None:
        """Queue the call's answers so far ({question: (score, answered_at)}); returns at once."""
        self._writer.submit(call_id, arrived_at, customer_id=customer_id, survey=[
            {"question": question, "score": score, "answered_at": at} for question, (score, at) in answers.items()])
