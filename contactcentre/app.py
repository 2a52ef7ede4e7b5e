"""create_app(settings): the one place that opens and closes resources.

Each part is a cleanup context: started in the order appended, stopped in
reverse. The PBX simulator, when pbx.mode is "simulator", starts before the
AMI client so the client finds it, and stops after it; the callback dialler
starts once the AMI client is up and stops before it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import replace
from datetime import timedelta

import socketio
from aiohttp import web
from sqlalchemy import func, select

from contactcentre.config import ConfigError, Settings
from contactcentre.crm.audit import AuditTrail
from contactcentre.crm.callbacks import CallbackStore
from contactcentre.crm.interactions import InteractionWriter
from contactcentre.crm.models import ContactPoint, Customer
from contactcentre.crm.offers import OfferRulesError, load_offers
from contactcentre.crm.screenpop import ScreenPopLookup
from contactcentre.crm.store import create_engine, session_factory, upgrade
from contactcentre.crm.surveys import SurveyStore
from contactcentre.ivr.survey import PostCallSurvey
from contactcentre.routing.callbacks import CallbackDialler
from contactcentre.routing.events import CustomerRecordShown
from contactcentre.routing.inbound import InboundFlow, SurveyEntry
from contactcentre.routing.outbound import OutboundDialler, OutboundPolicy
from contactcentre.routing.service import QueueRouter
from contactcentre.services import Services
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.client import AmiClient
from contactcentre.telephony.commands import PbxCommands
from contactcentre.telephony.recorder import FlightRecorder
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from contactcentre.telephony.simulator.traffic import generate_calls
from contactcentre.telephony.tracker import CallTracker
from contactcentre.web.api import api_errors
from contactcentre.web.auth import SessionSigner
from contactcentre.web.keys import SERVICES, SETTINGS, SIGNER, TEMPLATES
from contactcentre.web.realtime import ConsoleEvents, SocketNotifier
from contactcentre.web.routes import add_routes, templates

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, demo_traffic: bool = False) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[api_errors])
    services = Services(settings)
    try:
        services.offers = load_offers(settings.crm.offers_path)
    except OfferRulesError as exc:
        raise ConfigError(f"crm.offers: {exc}") from None
    app[SERVICES] = services
    app[SETTINGS] = settings
    secret = settings.web.session_secret or secrets.token_urlsafe(32)
    if not settings.web.session_secret and settings.web.redis_url:
        log.warning("web.session_secret is empty: each node makes its own, so a login works on one node only")
    app[SIGNER] = SessionSigner(secret, settings.web.session_max_age)
    app[TEMPLATES] = templates()

    manager = socketio.AsyncRedisManager(settings.web.redis_url) if settings.web.redis_url else None
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, logger=False, engineio_logger=False)
    sio.attach(app)
    services.sio = sio
    services.notifier = SocketNotifier(sio)
    add_routes(app)

    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_routing_ctx)
    app.cleanup_ctx.append(_agi_ctx)
    if settings.pbx.mode == "simulator":
        app.cleanup_ctx.append(_simulator_ctx)
    app.cleanup_ctx.append(_ami_ctx)
    app.cleanup_ctx.append(_callbacks_ctx)
    if demo_traffic and settings.pbx.mode == "simulator":
        app.cleanup_ctx.append(_demo_traffic_ctx)
    app.cleanup_ctx.append(_socketio_ctx)
    return app


async def _store_ctx(app: web.Application):
    services = app[SERVICES]
    await upgrade(services.settings.database.url)
    services.engine = create_engine(services.settings.database.url)
    services.sessions = session_factory(services.engine)
    yield
    await services.engine.dispose()


async def _routing_ctx(app: web.Application):
    services = app[SERVICES]
    settings = services.settings
    services.tracker = CallTracker(services.bus)
    writer = InteractionWriter(services.sessions, track=services.bus.track)
    await writer.queue_id(settings.routing.queue)
    services.router = QueueRouter(services.bus, writer, services.notifier, settings.routing.queue,
                                  settings.routing.dispositions)
    services.survey = PostCallSurvey(settings.survey, SurveyStore(services.sessions, writer))
    services.lookup = ScreenPopLookup(services.sessions, settings.crm.default_region, settings.crm.pop_interactions,
                                      services.offers)
    services.callbacks = CallbackStore(services.sessions, settings.callbacks.max_attempts,
                                       timedelta(seconds=settings.callbacks.retry_after),
                                       timedelta(days=settings.outbound.recent_contact_days))
    services.bus.subscribe(CustomerRecordShown, AuditTrail(services.sessions).on_record_shown)
    yield
    await services.bus.drain()


async def _agi_ctx(app: web.Application):
    services = app[SERVICES]
    settings = services.settings
    flow = InboundFlow(services.lookup, services.router, services.tracker, services.survey,
                       settings.routing.ring_timeout, settings.routing.pop_wait, settings.routing.max_talk)
    services.agi = AgiServer(settings.agi, {"inbound": flow, "survey": SurveyEntry(services.router, services.survey)})
    await services.agi.start()
    yield
    await services.agi.close()


async def _simulator_ctx(app: web.Application):
    services = app[SERVICES]
    settings = services.settings
    services.ami_secret = settings.ami.secret or secrets.token_urlsafe(16)
    agi_url = settings.simulator.agi_url or f"agi://{_connect_host(settings.agi.host)}:{services.agi.port}/inbound"
    services.simulator = SimulatedPbx(settings.ami.username, services.ami_secret, agi_url,
                                      talk_limit=settings.simulator.talk_limit, patience=settings.simulator.patience)
    await services.simulator.start(settings.simulator.ami_host, settings.simulator.ami_port)
    yield
    await services.simulator.close()


async def _ami_ctx(app: web.Application):
    services = app[SERVICES]
    ami_settings = services.settings.ami
    if services.simulator is not None:
        ami_settings = replace(ami_settings, host=services.settings.simulator.ami_host,
                               port=services.simulator.ami.port, secret=services.ami_secret)
    services.ami = AmiClient(ami_settings)
    if ami_settings.record_file:
        services.ami.recorder = FlightRecorder(ami_settings.record_file)
    services.ami.add_handler(services.tracker.handle, events=services.tracker.wanted_events)
    services.ami.on_connected(lambda: services.tracker.resync(services.ami))
    pbx = PbxCommands(services.ami)
    services.outbound = OutboundDialler(services.sessions, services.lookup, services.router, pbx,
                                        _outbound_policy(services.settings))
    services.console = ConsoleEvents(services.sio, app[SIGNER], services.sessions, services.router, pbx,
                                     services.tracker, services.outbound, services.callbacks,
                                     services.settings.crm.default_region)
    await services.ami.start()
    yield
    await services.ami.close()
    if services.ami.recorder is not None:
        services.ami.recorder.close()


def _outbound_policy(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy(settings.outbound.caller_id, settings.routing.ring_timeout,
                          settings.outbound.customer_ring_timeout, settings.routing.pop_wait,
                          timedelta(days=settings.outbound.recent_contact_days), settings.crm.default_region)


async def _callbacks_ctx(app: web.Application):
    services = app[SERVICES]
    dialler = CallbackDialler(services.callbacks, services.outbound, services.router, services.bus,
                              services.settings.callbacks.poll_interval)
    task = asyncio.create_task(dialler.run(), name="callback-dialler")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await services.outbound.close()


async def _demo_traffic_ctx(app: web.Application):
    services = app[SERVICES]
    sim = services.settings.simulator
    async with services.sessions() as session:
        rows = (await session.execute(
            select(ContactPoint.value, Customer.first_name, Customer.last_name).join(Customer)
            .where(ContactPoint.kind == "phone").order_by(func.random()).limit(500))).all()
    callers = [(r.value, f"{r.first_name} {r.last_name}") for r in rows]
    questions = [(q.lowest, q.highest) for q in services.settings.survey.questions]
    task = asyncio.create_task(generate_calls(services.simulator, callers, sim.calls_per_minute,
                                              sim.unknown_caller_share, questions=questions), name="demo-traffic")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _socketio_ctx(app: web.Application):
    yield
    services = app[SERVICES]
    await services.notifier.drain()
    await services.sio.shutdown()
    manager = services.sio.manager
    if isinstance(manager, socketio.AsyncRedisManager):
        manager.thread.cancel()
        await manager.pubsub.aclose()
        await manager.redis.aclose()


def _connect_host(bind_host: str) -> str:
    return "127.0.0.1" if bind_host in ("0.0.0.0", "", "::") else bind_host
