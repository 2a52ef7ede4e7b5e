"""The post-call survey: a few questions, each answered with one key, after the agent hangs up.

Who is asked: a caller the store knows whose latest consent for "survey" by
"phone" is a yes, checked when the survey would start (a consent withdrawn
during the call counts). Unknown callers and everyone else hear nothing.

How: the intro, then each question with GET DATA (one key, `answer_timeout`
after the prompt). A key from the question's lowest to highest is the answer,
kept at once through the store's ordered writer, so a caller who hangs up
mid-survey keeps the answers given and the questions not reached have none.
Any other key, or none, plays the retry prompt and asks once more; a second
miss leaves that question unanswered and moves on, unless the caller pressed
nothing at all both times: then they have left the phone and the survey ends.
A result of -1 (the caller hung up, or a prompt file is missing on the PBX) or
a 511 (the channel is dead) ends it too.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from contactcentre.config import SurveyQuestion, SurveySettings
from contactcentre.crm.surveys import SurveyStore
from contactcentre.telephony.agi.protocol import AgiCommandError, AgiResult
from contactcentre.telephony.agi.server import AgiSession

log = logging.getLogger(__name__)

DEAD_CHANNEL = 511
TRIES = 2  # one retry after a key that is no answer


class Miss(enum.Enum):
    SKIPPED = "no valid key twice"
    SILENT = "no key twice"
    GONE = "caller gone"


@dataclass(frozen=True, slots=True)
class SurveyedCall:
    call_id: str
    customer_id: int | None
    arrived_at: datetime


class PostCallSurvey:
    def __init__(self, settings: SurveySettings, store: SurveyStore):
        self._settings = settings
        self._store = store
        self._timeout_ms = round(settings.answer_timeout * 1000)

    async def offer(self, session: AgiSession, call: SurveyedCall) -> dict[str, int]:
        """Ask the caller, if they may be asked; return the answers they gave ({question: score})."""
        if not self._settings.enabled or call.customer_id is None:
            return {}
        try:
            consented = await self._store.consented(call.customer_id)
        except (OSError, SQLAlchemyError) as exc:  # no consent seen is no consent: the caller goes
            log.warning("no survey: consent could not be read: %s", exc, extra={"call_id": call.call_id})
            return {}
        if not consented:
            log.info("no survey: no survey consent by phone", extra={"call_id": call.call_id})
            return {}
        return await self._ask(session, call)

    async def _ask(self, session: AgiSession, call: SurveyedCall) -> dict[str, int]:
        answers: dict[str, tuple[int, datetime]] = {}
        ended: Miss | None = None if await self._play(session, self._settings.intro) else Miss.GONE
        for question in self._settings.questions:
            if ended is not None:
                break
            outcome = await self._question(session, question)
            if isinstance(outcome, int):
                answers[question.key] = (outcome, datetime.now(UTC))
                self._store.keep(call.call_id, call.arrived_at, call.customer_id, answers)
            elif outcome is not Miss.SKIPPED:
                ended = outcome
        if ended is not Miss.GONE:
            await self._play(session, self._settings.goodbye)
        log.info("survey done: %d of %d answered%s", len(answers), len(self._settings.questions),
                 f" ({ended.value})" if ended else "", extra={"call_id": call.call_id})
        return {question: score for question, (score, _) in answers.items()}

    async def _question(self, session: AgiSession, question: SurveyQuestion) -> int | Miss:
        keys = []
        for attempt in range(TRIES):
            if attempt and not await self._play(session, self._settings.retry):
                return Miss.GONE
            reply = await self._command(session.get_data(question.prompt, self._timeout_ms, 1))
            if reply is None:
                return Miss.GONE
            key = reply.digits
            if key.isdigit() and question.lowest <= int(key) <= question.highest:
                return int(key)
            keys.append(key)
        return Miss.SKIPPED if any(keys) else Miss.SILENT

    async def _play(self, session: AgiSession, sound: str) -> bool:
        return await self._command(session.stream_file(sound)) is not None

    @staticmethod
    async def _command(sent) -> AgiResult | None:
        """The reply, or None once the caller is gone (-1, or 511 on a dead channel)."""
        try:
            reply = await sent
        except AgiCommandError as exc:
            if exc.code != DEAD_CHANNEL:
                raise
            return None
        return None if reply.result == -1 else reply
