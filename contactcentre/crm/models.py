"""The customer store's tables (SQLAlchemy 2, typed mappings).

The same models run on SQLite and PostgreSQL; the schema itself is made by the
Alembic migrations in migrations/, which a test compares with these models.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, DateTime, Enum, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


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

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    tier: Mapped[ServiceTier] = mapped_column(_enum(ServiceTier, "service_tier"), default=ServiceTier.BASIC)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

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
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "phone"
    value: Mapped[str] = mapped_column(String(64))  # +441632960101

    customer: Mapped[Customer] = relationship(back_populates="contact_points")


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.AGENT)
    device: Mapped[str | None] = mapped_column(String(64), unique=True)  # PJSIP/agent1


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Interaction(Base):
    """One call (or, later, any other contact) and what came of it."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer_arrived", "customer_id", "arrived_at"),)

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
