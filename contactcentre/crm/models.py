"""The customer store's tables (SQLAlchemy 2, typed mappings).

The same models run on SQLite and PostgreSQL; the schema itself is made by the
Alembic migrations in migrations/, which a test compares with these models.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL: a bigger number names no row


class Base(DeclarativeBase):
    pass


def row_as_json(row: Base) -> dict:
    """A mapped row as JSON-ready values: its columns, with times in ISO 8601 (UTC) and money as strings."""
    return {column.key: _json_value(getattr(row, column.key)) for column in row.__mapper__.column_attrs}


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        # SQLite hands times back without their offset; every time the store writes is UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


class ServiceTier(str, enum.Enum):
    BASIC = "basic"
    REACTIVE = "reactive"
    PROACTIVE = "proactive"


class Role(str, enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as the lower-case value, checked by a constraint on both databases.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], native_enum=False,
                create_constraint=True, length=16)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_name", "last_name", "first_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    tier: Mapped[ServiceTier] = mapped_column(_enum(ServiceTier, "service_tier"), default=ServiceTier.BASIC)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # customer since
    segment: Mapped[str | None] = mapped_column(String(32))
    preferred_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    lifetime_value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"), server_default="0")
    churn_risk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    contact_points: Mapped[list[ContactPoint]] = relationship(back_populates="customer")

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactPoint(Base):
    """A way to reach a customer. Phones are stored in E.164 for caller-ID lookup."""

    __tablename__ = "contact_points"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_contact_points_kind_value"),
        Index("ix_contact_points_customer_id", "customer_id"),
        # one primary contact point per customer and kind
        Index("uq_contact_points_primary", "customer_id", "kind", unique=True,
              sqlite_where=text("is_primary"), postgresql_where=text("is_primary")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "phone" (E.164) or "email" (lower case)
    value: Mapped[str] = mapped_column(String(254))  # +441632960101, jane@example.org
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    customer: Mapped[Customer] = relationship(back_populates="contact_points")


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.AGENT)
    device: Mapped[str | None] = mapped_column(String(64), unique=True)  # PJSIP/agent1
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Interaction(Base):
    """One call (or, later, any other contact) and what came of it."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer_arrived", "customer_id", "arrived_at"),
                      Index("ix_interactions_arrived", "arrived_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="voice")
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    arrived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disposition: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    end_reason: Mapped[str | None] = mapped_column(String(64))  # when the hang-up itself was not seen
    timeline: Mapped[list | None] = mapped_column(JSON)  # [[ms since arrival, AMI event, channel], ...]
    direction: Mapped[str] = mapped_column(String(8), default="inbound", server_default="inbound")
    ivr_path: Mapped[list | None] = mapped_column(JSON)  # the IVR nodes the caller went through
    script_path: Mapped[list | None] = mapped_column(JSON)  # the call-script nodes the agent went through
    recording_ref: Mapped[str | None] = mapped_column(String(255))
    survey: Mapped[dict | None] = mapped_column(JSON)  # the caller's post-call answers: {"agent": 4, "solved": 1}

    customer: Mapped[Customer | None] = relationship()
    agent: Mapped[Agent | None] = relationship()
    queue: Mapped[Queue | None] = relationship()
    legs: Mapped[list[InteractionLeg]] = relationship(order_by="InteractionLeg.joined_at")


class InteractionLeg(Base):
    """One agent's part in an interaction: a transferred call has one per agent who talked to the caller."""

    __tablename__ = "interaction_legs"
    __table_args__ = (UniqueConstraint("call_id", "agent_device", name="uq_interaction_legs_call_device"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("interactions.call_id", ondelete="CASCADE"))
    agent_device: Mapped[str] = mapped_column(String(64))  # PJSIP/agent1, or a queue member's interface
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    talk_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    hold_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class AuditLog(Base):
    """Who read or changed which record, when and why. Rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))  # view, change, export, erase ...
    entity: Mapped[str] = mapped_column(String(32))  # customer, interaction ...
    entity_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(255))


class Address(Base):
    __tablename__ = "addresses"
    __table_args__ = (Index("ix_addresses_customer_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="home")  # home, billing, delivery
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2


class Transaction(Base):
    """An order, payment or refund, with its items."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_customer_occurred", "customer_id", "occurred_at"),
                      UniqueConstraint("reference", name="uq_transactions_reference"))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # order, payment, refund
    reference: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    items: Mapped[list | None] = mapped_column(JSON)  # [{"sku", "name", "quantity", "price"}, ...]


class TicketStatus(str, enum.Enum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_customer_status", "customer_id", "status"),
                      Index("ix_tickets_status_due", "status", "resolve_due"))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus, "ticket_status"), default=TicketStatus.OPEN)
    priority: Mapped[str] = mapped_column(String(16), default="normal")  # low, normal, high, urgent
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    sla_policy: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_response_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolve_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    history: Mapped[list[TicketEvent]] = relationship(order_by="TicketEvent.at")


class TicketEvent(Base):
    """One change to a ticket: its history."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(32))  # status, owner, priority, note ...
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


class SurveyResponse(Base):
    """One answer to one survey question. A call's answers are also on its interaction (`survey`)."""

    __tablename__ = "survey_responses"
    __table_args__ = (Index("ix_survey_responses_customer", "customer_id", "answered_at"),
                      # one answer per question and call: a retried write updates it, never adds a second
                      UniqueConstraint("call_id", "question", name="uq_survey_responses_call_question"))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    call_id: Mapped[str | None] = mapped_column(ForeignKey("interactions.call_id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Consent(Base):
    """A customer granting or withdrawing consent; the latest row per purpose and channel counts."""

    __tablename__ = "consents"
    # `id` last: the latest answer (at, then id for a tie) is one backward index seek on both databases
    __table_args__ = (Index("ix_consents_customer_purpose", "customer_id", "purpose", "channel", "at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))  # marketing, survey, callback, recording
    channel: Mapped[str] = mapped_column(String(16))  # phone, email, sms
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(64))  # ivr, agent, web form, import ...


class DoNotCall(Base):
    """A number nobody may dial, whoever it belongs to."""

    __tablename__ = "do_not_call"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)  # E.164
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(64))


class CallbackStatus(str, enum.Enum):
    SCHEDULED = "scheduled"  # waiting for its time, or for its next try
    DIALLING = "dialling"  # offered to an agent and being dialled now
    DONE = "done"  # the customer answered
    FAILED = "failed"  # every try used up without reaching the customer
    REFUSED = "refused"  # do-not-call or the customer's objection stopped it; not tried again


class Callback(Base):
    """A call back promised to a customer: when, on which number, why, and how the tries went.

    Each try that dialled is also an outbound interaction (`last_call_id` is the latest)."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_status_due", "status", "due_at"),
                      Index("ix_callbacks_customer_id", "customer_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(64))  # E.164, one of the customer's numbers
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when the next try may be dialled
    note: Mapped[str | None] = mapped_column(Text)  # what the call back is about, for the agent who makes it
    status: Mapped[CallbackStatus] = mapped_column(_enum(CallbackStatus, "callback_status"),
                                                   default=CallbackStatus.SCHEDULED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_result: Mapped[str | None] = mapped_column(String(16))  # answered, no-answer, busy, refused ...
    last_reason: Mapped[str | None] = mapped_column(String(255))  # the result in words
    last_call_id: Mapped[str | None] = mapped_column(String(64))
