"""Screen pop latency: from the PBX's first AMI event of a call to the pop on the agent's screen.

    python bench/screenpop.py                      # 1,000 agents, 100 calls/s for 20 s
    python bench/screenpop.py --quick              # 50 agents, 20 calls/s for 5 s (under ~30 s)
    python bench/screenpop.py --agents 200 --rate 20 --py-spy /tmp/server.txt

This process hosts the PBX simulator and the agents' consoles; the server runs
in its own process with `pbx.mode = "asterisk"`, its AMI client pointed at the
simulator here, so it cannot tell the simulator from Asterisk and the bench's
clients do not share its event loop. The first AMI event of a call
(`SimCall.t_first_event`, just after `Newchannel` is written), the agent's
phone ringing (`SimCall.t_ringing`) and the pop arriving at the client are all
`time.perf_counter()` stamps taken in this one process, so they compare
directly.

Each agent is a python-socketio client that logs in over `POST /login`,
connects, goes `ready`, acks each `screen_pop` (the server rings the phone only
after that ack), answers 0.1 s later, and submits a disposition at `wrap_up`.
The simulated caller hangs up after 0.5-1.0 s of talk. Only calls placed while
at least one agent was free (available, and not already claimed by a call
whose pop is still on its way) count toward the latency figures: the others
waited in the queue, and their wait is not pop latency.

Everything listens on 127.0.0.1; every wait has a deadline; the server process
and the temporary store are removed on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

import aiohttp  # noqa: E402
import socketio  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from contactcentre.config import Settings  # noqa: E402
from contactcentre.crm.models import Agent, Role  # noqa: E402
from contactcentre.crm.seed import demo_phone, seed_customers  # noqa: E402
from contactcentre.crm.store import create_engine, session_factory, upgrade  # noqa: E402
from contactcentre.telephony.simulator.pbx import SimCall, SimulatedPbx  # noqa: E402

HOST = "127.0.0.1"
PASSWORD = "bench password 1"
AMI_USER = "bench"
SESSION_SECRET = "screenpop-bench-secret"
CONNECT_BATCH = 50  # consoles connecting at once: enough to be quick, few enough not to stall the server
LOGIN_CONCURRENCY = 20
ANSWER_AFTER = 0.1  # seconds from pop to the agent's click on "answer"
AUTO_ANSWER = 2.0  # the phone picks up by itself if the click came before it rang (a lost PJSIPNotify)
TALK = (0.5, 1.0)  # seconds the simulated caller talks before hanging up
PATIENCE = 60.0  # long enough that no caller abandons during a run
UNKNOWN_SHARE = 0.2  # share of calls from numbers not in the store
SERVER_START_TIMEOUT = 60.0
DRAIN_TIMEOUT = 30.0
BUSY_MACHINE = 0.25  # cores used by other processes above which the figures are not the server's own


# -- the server process -----------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    """Run the real app against an AMI server at --ami-port; print its ports as one JSON line."""
    from aiohttp import web

    from contactcentre import logs
    from contactcentre.app import create_app
    from contactcentre.web.keys import SERVICES

    settings = Settings.load(env={}).with_overrides(
        database={"url": args.database},
        pbx={"mode": "asterisk"},
        ami={"host": HOST, "port": args.ami_port, "username": AMI_USER, "secret": args.ami_secret},
        agi={"host": HOST, "port": 0},
        server={"host": HOST, "port": 0},
        web={"session_secret": SESSION_SECRET},
        logging={"level": args.log_level},
    )
    logs.setup(settings.logging.level)
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        services = runner.app[SERVICES]
        print(json.dumps({"http": runner.addresses[0][1], "agi": services.agi.port, "pid": os.getpid()}),
              flush=True)
        await _until_told_to_stop()
    finally:
        await runner.cleanup()
        print(json.dumps({"gc_pauses": pauses.pauses}), flush=True)


class GcPauses:
    """gc.callbacks hook: (time.time() at the end, seconds, generation) of every collection of 1 ms or more.

    time.time() because the bench compares these with its own window from another process."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        if took >= 0.001:
            self.pauses.append((time.time(), took, info["generation"]))

    def within(self, start: float, end: float) -> list[float]:
        return [took for at, took, _ in self.pauses if start <= at <= end]


BENCH_GC = GcPauses()


async def _until_told_to_stop() -> None:
    """SIGTERM, or our stdin closing (the bench died): either way, shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({eof, stopped}, return_when=asyncio.FIRST_COMPLETED)
    eof.cancel()
    stopped.cancel()


class ServerProcess:
    """The server subprocess: started with the simulator's AMI port, stopped in a finally."""

    def __init__(self, database: str, ami_port: int, ami_secret: str, log_path: Path, log_level: str,
                 gc_freeze: bool):
        self.command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--database", database,
                        "--ami-port", str(ami_port), "--ami-secret", ami_secret, "--log-level", log_level,
                        *(["--gc-freeze"] if gc_freeze else [])]
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.http_port = 0
        self.agi_port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        with open(self.log_path, "wb") as log_file:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, cwd=ROOT)
        async with asyncio.timeout(SERVER_START_TIMEOUT):
            line = await self.proc.stdout.readline()
        if not line:
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError("server exited before it listened; its log ends:\n" + "\n".join(tail))
        ports = json.loads(line)
        self.http_port, self.agi_port = ports["http"], ports["agi"]

    async def stop(self) -> GcPauses:
        """Stop the server; its GC pauses come back on its last stdout line."""
        pauses = GcPauses()
        if self.proc is None or self.proc.returncode is not None:
            return pauses
        self.proc.terminate()
        try:
            async with asyncio.timeout(15):
                rest = await self.proc.stdout.read()
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return pauses
        for line in rest.decode(errors="replace").splitlines():
            if line.startswith('{"gc_pauses"'):
                pauses.pauses = [tuple(p) for p in json.loads(line)["gc_pauses"]]
        return pauses


# -- the store ------------------------------------------------------------------------------------


async def prepare_store(url: str, agents: int, customers: int) -> None:
    """Migrate, seed customers, and add agents agent0001..agentN with phones PJSIP/agentNNNN.

    Every agent shares one argon2 hash made with argon2's cheapest parameters:
    verify reads its parameters from the hash, so the real /login path runs,
    but 1,000 logins take seconds instead of a minute of the server's CPU."""
    await upgrade(url)
    engine = create_engine(url)
    try:
        sessions = session_factory(engine)
        await seed_customers(sessions, customers, history=True)
        password_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
        rows = [{"username": username(n), "display_name": f"Bench Agent {n}", "password_hash": password_hash,
                 "role": Role.AGENT, "device": f"PJSIP/{username(n)}"} for n in range(1, agents + 1)]
        async with sessions() as session, session.begin():
            await session.execute(insert(Agent), rows)
    finally:
        await engine.dispose()


def username(n: int) -> str:
    return f"agent{n:04d}"


# -- the agents' consoles -------------------------------------------------------------------------


@dataclass
class Floor:
    """What the bench knows about all consoles together."""

    states: Counter = field(default_factory=Counter)  # agent state -> how many agents are in it
    pops: dict[str, float] = field(default_factory=dict)  # call id -> perf_counter of its first pop
    closed: dict[str, float] = field(default_factory=dict)  # call id -> perf_counter of disposition ack
    unclosed: set[str] = field(default_factory=set)  # calls whose disposition was refused or timed out
    errors: Counter = field(default_factory=Counter)
    claimed: set[str] = field(default_factory=set)  # calls placed while an agent was free, pop not yet here

    @property
    def free_agents(self) -> int:
        return self.states["available"] - len(self.claimed)


class Console:
    """One agent's browser: acks pops, answers, submits a disposition at wrap-up."""

    def __init__(self, floor: Floor, name: str, http: aiohttp.ClientSession, dispositions: tuple[str, ...],
                 rng: random.Random):
        self.floor = floor
        self.name = name
        self.state = ""
        self.dispositions = dispositions
        self.rng = rng
        self.sio = socketio.AsyncClient(reconnection=False, handle_sigint=False, http_session=http)
        self.sio.on("agent_state", self.on_agent_state)
        self.sio.on("screen_pop", self.on_screen_pop)
        self.sio.on("call_state", self.on_call_state)
        self._tasks: set[asyncio.Task] = set()

    async def connect(self, base_url: str, cookie: str) -> None:
        # The login cookie goes in the WebSocket request's headers: given as `headers=`, engineio would
        # move it into the HTTP session's cookie jar, which all consoles here share.
        self.sio.eio.websocket_extra_options = {"headers": {"Cookie": cookie}}
        await self.sio.connect(base_url, transports=["websocket"], wait_timeout=10)
        reply = await self.sio.call("ready", {}, timeout=10)
        if not reply.get("ok"):
            raise RuntimeError(f"{self.name}: ready refused: {reply}")

    async def on_agent_state(self, data: dict) -> None:
        if self.state:
            self.floor.states[self.state] -= 1
        self.state = data["state"]
        self.floor.states[self.state] += 1

    async def on_screen_pop(self, data: dict) -> bool:
        now = time.perf_counter()
        call_id = data["call_id"]
        if call_id not in self.floor.pops:
            self.floor.pops[call_id] = now
            self.floor.claimed.discard(call_id)  # from now on the agent shows as reserved instead
        self._spawn(self._answer(call_id))
        return True  # the ack: the server rings the phone once the screen has shown the caller

    async def on_call_state(self, data: dict) -> None:
        state, call_id = data["state"], data["call_id"]
        if state == "wrap_up":
            self._spawn(self._dispose(call_id))
        elif state == "missed":
            self.floor.errors["missed (phone rang out)"] += 1
            self._spawn(self._act("ready", {}))

    async def _answer(self, call_id: str) -> None:
        await asyncio.sleep(ANSWER_AFTER)
        await self._act("answer", {"call_id": call_id})

    async def _dispose(self, call_id: str) -> None:
        disposition = self.rng.choice(self.dispositions)
        if await self._act("disposition", {"call_id": call_id, "disposition": disposition, "notes": "bench"}):
            self.floor.closed[call_id] = time.perf_counter()
        else:
            self.floor.unclosed.add(call_id)

    async def _act(self, event: str, data: dict) -> bool:
        try:
            reply = await self.sio.call(event, data, timeout=10)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.SocketIOError) as exc:
            self.floor.errors[f"{event}: {type(exc).__name__}"] += 1
            return False
        if not reply.get("ok"):
            self.floor.errors[f"{event}: {reply.get('id')}"] += 1
            return False
        return True

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.sio.disconnect()


async def log_in(http: aiohttp.ClientSession, base_url: str, name: str) -> str:
    async with http.post(f"{base_url}login", data={"username": name, "password": PASSWORD},
                         allow_redirects=False) as response:
        if response.status != 302:
            raise RuntimeError(f"{name}: login answered {response.status}")
        return f"cc_session={response.cookies['cc_session'].value}"


async def open_consoles(floor: Floor, base_url: str, agents: int, http: aiohttp.ClientSession,
                        dispositions: tuple[str, ...]) -> list[Console]:
    limit = asyncio.Semaphore(LOGIN_CONCURRENCY)

    async def login(n: int) -> str:
        async with limit:
            return await log_in(http, base_url, username(n))

    async with asyncio.timeout(60 + agents * 0.05):
        cookies = await asyncio.gather(*(login(n) for n in range(1, agents + 1)))
    consoles = [Console(floor, username(n), http, dispositions, random.Random(n)) for n in range(1, agents + 1)]
    async with asyncio.timeout(60 + agents * 0.1):
        for start in range(0, agents, CONNECT_BATCH):
            batch = range(start, min(start + CONNECT_BATCH, agents))
            await asyncio.gather(*(consoles[i].connect(base_url, cookies[i]) for i in batch))
        while floor.states["available"] < agents:
            await asyncio.sleep(0.05)
    return consoles


async def close_consoles(consoles: list[Console]) -> None:
    async with asyncio.timeout(DRAIN_TIMEOUT):
        for start in range(0, len(consoles), CONNECT_BATCH * 4):
            batch = consoles[start:start + CONNECT_BATCH * 4]
            await asyncio.gather(*(c.close() for c in batch), return_exceptions=True)


# -- traffic and measurement ----------------------------------------------------------------------


class StageTap:
    """Simulator tap: when the server's FastAGI script sent its first command for each call.

    That splits the pop latency into "PBX to our flow" and "flow to the pop on screen"."""

    def __init__(self) -> None:
        self.first_agi: dict[str, float] = {}

    def __call__(self, name: str, headers: list[tuple[str, str]]) -> None:
        if name != "AGIExecStart":
            return
        linkedid = next((value for key, value in headers if key == "Linkedid"), "")
        self.first_agi.setdefault(linkedid, time.perf_counter())


@dataclass
class PlacedCall:
    call: SimCall
    eligible: bool  # an agent was free when the call arrived: its pop latency counts


async def place_calls(pbx: SimulatedPbx, floor: Floor, placed: list[PlacedCall], rate: float, duration: float,
                      customers: int, rng: random.Random, poisson: bool) -> None:
    start = time.perf_counter()
    due = start
    while True:
        due += rng.expovariate(rate) if poisson else 1.0 / rate
        if due - start >= duration:
            return
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if rng.random() < UNKNOWN_SHARE:
            number, name = f"+1202555{rng.randrange(10_000):04d}", ""
        else:
            number, name = demo_phone(rng.randint(1, customers)), "Bench Caller"
        eligible = floor.free_agents > 0
        call = pbx.place_call(number, name, talk_limit=rng.uniform(*TALK))
        if eligible:
            floor.claimed.add(call.call_id)
        placed.append(PlacedCall(call, eligible))


async def loop_lag(samples: list[float], stop: asyncio.Event, period: float = 0.005) -> None:
    """How late this process's event loop wakes up: what the bench itself adds to the pop's arrival time."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(period)
        samples.append(time.perf_counter() - before - period)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (psutil is not a dependency)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine spent busy (from /proc/stat), to see who else ran."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Usage:
    """CPU seconds over the traffic window: the server, this process, and the whole machine."""

    wall: float
    server: float
    bench: float
    machine: float
    at: float = 0.0  # time.time() of the sample: GC pauses from the server process are matched on it

    @classmethod
    def sample(cls, server_pid: int) -> Usage:
        return cls(time.perf_counter(), cpu_seconds(server_pid), cpu_seconds(os.getpid()), machine_busy_seconds(),
                   time.time())

    def since(self, before: Usage) -> Usage:
        return Usage(self.wall - before.wall, self.server - before.server, self.bench - before.bench,
                     self.machine - before.machine, before.at)


@dataclass
class Result:
    agents: int
    rate: float
    duration: float
    placed: int
    eligible: int
    no_pop: int
    latencies_ms: list[float]
    to_flow_ms: list[float]  # first AMI event -> the server's first FastAGI command for the call
    flow_to_pop_ms: list[float]  # that command -> the pop at the client
    before_ring: int
    ring_seen: int
    completed: int
    sustained: float
    elapsed: float
    cores_server: float
    server_ms_per_call: float  # server CPU over the run / calls placed: what caps calls a second
    cores_bench: float
    cores_others: float
    lag_p99_ms: float
    lag_max_ms: float
    errors: dict
    window: tuple[float, float]  # time.time() when calls started and stopped arriving
    server_gc_ms: list[float] = field(default_factory=list)  # the server's GC pauses in the window
    bench_gc_ms: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"agents {self.agents}, offered {self.rate:g} calls/s for {self.duration:g} s: "
               f"{self.placed} calls placed, {self.eligible} with an agent free on arrival"]
        out.append(f"pop latency, first AMI event -> pop at the client ({len(self.latencies_ms)} calls): "
                   + _spread(self.latencies_ms))
        out.append("  of which PBX -> the server's first FastAGI command: " + _spread(self.to_flow_ms))
        out.append("  of which that command -> pop at the client:       " + _spread(self.flow_to_pop_ms))
        out.append(f"pop before the agent's phone rang: {self.before_ring} of {self.ring_seen} rung calls "
                   f"({100 * self.before_ring / max(1, self.ring_seen):.1f} %); calls with no pop: {self.no_pop}")
        out.append(f"calls completed (answered, ended, disposition accepted): {self.completed} in "
                   f"{self.elapsed:.1f} s; sustained {self.sustained:.1f} calls/s")
        out.append(f"CPU in cores while calls arrived: server {self.cores_server:.2f}, bench (simulator + consoles) "
                   f"{self.cores_bench:.2f}, other processes {self.cores_others:.2f}, of {os.cpu_count()}; "
                   f"server CPU over the run {self.server_ms_per_call:.1f} ms per call")
        out.append(f"bench event-loop lag: p99 {self.lag_p99_ms:.2f} ms, max {self.lag_max_ms:.2f} ms")
        out.append(f"GC pauses of 1 ms or more while calls arrived: server {_pauses(self.server_gc_ms)}; "
                   f"bench {_pauses(self.bench_gc_ms)}")
        if self.cores_others > BUSY_MACHINE:
            out.append(f"WARNING: other processes used {self.cores_others:.2f} cores during the run: "
                       "the latencies above include waiting for a CPU")
        if self.errors:
            out.append("errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.errors.items())))
        return out


def _pauses(values: list[float]) -> str:
    return f"{len(values)}, {sum(values):.0f} ms in all, longest {max(values, default=0):.0f} ms"


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"p50 {percentile(values, 50):.2f}  p90 {percentile(values, 90):.2f}  p99 {percentile(values, 99):.2f}"
            f"  max {max(values):.2f} ms")


def summarise(args, placed: list[PlacedCall], floor: Floor, stages: StageTap, t0: float, usage: Usage,
              arrivals: Usage, lag: list[float]) -> Result:
    """`usage` covers the whole run (arrivals and drain), `arrivals` only the time calls kept coming."""
    latencies, to_flow, flow_to_pop = [], [], []
    before_ring = ring_seen = 0
    for item in placed:
        call = item.call
        popped = floor.pops.get(call.call_id)
        flow = stages.first_agi.get(call.call_id)
        if item.eligible and popped is not None:
            latencies.append((popped - call.t_first_event) * 1000)
            if flow is not None:
                to_flow.append((flow - call.t_first_event) * 1000)
                flow_to_pop.append((popped - flow) * 1000)
        if call.t_ringing is not None and popped is not None:
            ring_seen += 1
            before_ring += popped < call.t_ringing
    done = sorted(floor.closed[p.call.call_id] for p in placed
                  if p.call.call_id in floor.closed and p.call.finished.is_set())
    # Completions over the time they span: a constant pop-to-hang-up delay shifts the span but does not
    # stretch it, while a server falling behind stretches it, so this drops below the offered rate.
    sustained = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 else 0.0
    return Result(
        agents=args.agents, rate=args.rate, duration=args.duration, placed=len(placed),
        eligible=sum(p.eligible for p in placed), no_pop=sum(p.call.call_id not in floor.pops for p in placed),
        latencies_ms=latencies, to_flow_ms=to_flow, flow_to_pop_ms=flow_to_pop,
        before_ring=before_ring, ring_seen=ring_seen, completed=len(done),
        sustained=sustained, elapsed=(done[-1] - t0) if done else usage.wall,
        cores_server=arrivals.server / arrivals.wall, server_ms_per_call=usage.server * 1000 / max(1, len(placed)),
        cores_bench=arrivals.bench / arrivals.wall,
        cores_others=max(0.0, arrivals.machine - arrivals.server - arrivals.bench) / arrivals.wall,
        lag_p99_ms=percentile(lag, 99) * 1000 if lag else 0.0, lag_max_ms=max(lag) * 1000 if lag else 0.0,
        errors=dict(floor.errors), window=(arrivals.at, arrivals.at + arrivals.wall))


# -- the run --------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="cc-screenpop-"))
    database = f"sqlite+aiosqlite:///{workdir / 'store.db'}"
    dispositions = Settings.load(env={}).routing.dispositions
    rng = random.Random(args.seed)
    step = _stepper()
    step(f"store: {args.customers} customers, {args.agents} agents in {workdir}")
    await prepare_store(database, args.agents, args.customers)
    secret = secrets.token_urlsafe(16)
    pbx = SimulatedPbx(AMI_USER, secret, "agi://127.0.0.1:4573/inbound", talk_limit=TALK[1], patience=PATIENCE,
                       auto_answer=AUTO_ANSWER)
    await pbx.start(HOST, 0)
    server = ServerProcess(database, pbx.ami.port, secret, workdir / "server.log", args.server_log_level,
                           args.server_gc_freeze)
    consoles: list[Console] = []
    profiler: asyncio.subprocess.Process | None = None
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(),
                                 timeout=aiohttp.ClientTimeout(total=30))
    try:
        await server.start()
        pbx.agi_url = f"agi://{HOST}:{server.agi_port}/inbound"
        base_url = f"http://{HOST}:{server.http_port}/"
        await wait_healthy(http, base_url)
        step(f"server pid {server.pid} on {base_url}, FastAGI {server.agi_port}, simulator AMI {pbx.ami.port}")
        floor = Floor()
        consoles = await open_consoles(floor, base_url, args.agents, http, dispositions)
        step(f"{len(consoles)} consoles logged in and ready")
        if args.py_spy:
            profiler = await start_py_spy(server.pid, args.duration, args.py_spy)
        # Setup left many objects behind (store seeding, 1,000 clients): frozen, they no longer make
        # each full collection of this process long enough to delay the pops it times.
        gc.collect()
        gc.freeze()
        result = await run_traffic(args, pbx, floor, server.pid, rng)
        if profiler is not None:
            await finish_py_spy(profiler, args.py_spy)
        with contextlib.suppress(TimeoutError):
            await close_consoles(consoles)
        consoles = []
        result.server_gc_ms = [took * 1000 for took in (await server.stop()).within(*result.window)]
        result.bench_gc_ms = [took * 1000 for took in BENCH_GC.within(*result.window)]
        return result
    finally:
        if profiler is not None and profiler.returncode is None:
            profiler.kill()
            await profiler.wait()
        with contextlib.suppress(Exception):
            await close_consoles(consoles)
        await http.close()
        await server.stop()
        await pbx.close()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def run_traffic(args, pbx: SimulatedPbx, floor: Floor, server_pid: int, rng: random.Random) -> Result:
    stop = asyncio.Event()
    lag: list[float] = []
    placed: list[PlacedCall] = []
    stages = StageTap()
    pbx.taps.append(stages)
    lag_task = asyncio.ensure_future(loop_lag(lag, stop))
    before = Usage.sample(server_pid)
    try:
        await place_calls(pbx, floor, placed, args.rate, args.duration, args.customers, rng,
                          args.arrivals == "poisson")
        arrivals = Usage.sample(server_pid).since(before)
        async with asyncio.timeout(DRAIN_TIMEOUT):
            await asyncio.gather(*(p.call.finished.wait() for p in placed))
            while any(p.call.call_id not in floor.closed and p.call.call_id not in floor.unclosed
                      for p in placed if p.call.t_ringing is not None):
                await asyncio.sleep(0.02)
    except TimeoutError:
        floor.errors["calls still up at the drain deadline"] += sum(not p.call.finished.is_set() for p in placed)
    finally:
        usage = Usage.sample(server_pid).since(before)
        stop.set()
        await lag_task
        pbx.taps.remove(stages)
    return summarise(args, placed, floor, stages, before.wall, usage, arrivals, lag)


async def wait_healthy(http: aiohttp.ClientSession, base_url: str) -> None:
    """The server is up once its AMI link to the simulator is logged in."""
    async with asyncio.timeout(SERVER_START_TIMEOUT):
        while True:
            async with http.get(f"{base_url}health") as response:
                if (await response.json()).get("ok"):
                    return
            await asyncio.sleep(0.1)


async def start_py_spy(pid: int, duration: float, output: Path) -> asyncio.subprocess.Process:
    # --gil: only the thread holding the GIL is sampled, i.e. Python actually running. Without it, threads
    # parked in C (aiosqlite's workers in SimpleQueue.get, SQLite's busy-wait sleeps) count as busy.
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "--pid", str(pid), "--duration", str(max(1, int(duration))), "--rate", "250",
        "--gil", "--format", "raw", "--output", str(output), "--nonblocking",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def finish_py_spy(profiler: asyncio.subprocess.Process, output: Path) -> None:
    async with asyncio.timeout(DRAIN_TIMEOUT):
        await profiler.wait()
    if not output.exists():
        print(f"py-spy wrote nothing (exit {profiler.returncode}); is ptrace allowed?")
        return
    for line in top_functions(output):
        print(line)


def top_functions(collapsed: Path, count: int = 20) -> list[str]:
    """Self and inclusive shares per function from py-spy's collapsed stacks (`a;b;c 12`)."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack:
            continue
        n = int(samples)
        total += n
        frames = stack.split(";")
        own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            if not frame.endswith(PLUMBING):
                inclusive[frame] += n
    out = [f"server profile, {total} samples ({collapsed}); self time:"]
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(count)]
    out.append("inclusive time (event loop and thread plumbing left out):")
    out += [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(count)]
    return out


# Frames every sample passes through: they would top the inclusive list and say nothing.
PLUMBING = ("(asyncio/base_events.py)", "(asyncio/runners.py)", "(asyncio/events.py)", "(threading.py)",
            "(screenpop.py)", "(sqlalchemy/util/concurrency.py)", "(sqlalchemy/util/_concurrency_py3k.py)")


def _short(frame: str) -> str:
    """`handle (contactcentre/telephony/tracker.py:91)` -> `handle (telephony/tracker.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "contactcentre/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def _commit() -> str:
    try:
        head = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head or "unknown"


def _stepper():
    start = time.perf_counter()

    def step(text: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {text}", flush=True)
    return step


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000, help="agents logged in over socket.io (default 1000)")
    parser.add_argument("--rate", type=float, default=100.0, help="new calls a second (default 100)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals (default 20)")
    parser.add_argument("--quick", action="store_true", help="50 agents, 20 calls/s, 5 s")
    parser.add_argument("--customers", type=int, default=10_000, help="customers in the store (default 10000)")
    parser.add_argument("--arrivals", choices=["poisson", "even"], default="poisson")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="the server's logging.level (default INFO, as config/contactcentre.toml)")
    parser.add_argument("--server-gc-freeze", action="store_true",
                        help="experiment: gc.freeze() in the server once it listens")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE",
                        help="profile the server with py-spy during the arrivals; print its top functions")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and server log")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server subprocess
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--ami-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ami-secret", help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="INFO", help=argparse.SUPPRESS)
    parser.add_argument("--gc-freeze", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.serve:
        asyncio.run(serve(args))
        return 0
    if args.quick:
        args.agents, args.rate, args.duration = 50, 20.0, 5.0
    if not (1 <= args.agents <= 5000 and 0 < args.rate <= 1000 and 0 < args.duration <= 300):
        print("screenpop: expected 1..5000 agents, 0..1000 calls/s, 0..300 s", file=sys.stderr)
        return 2
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"commit {_commit()}; {' '.join(sys.argv)}")
    gc.callbacks.append(BENCH_GC)
    result = asyncio.run(bench(args))
    for line in result.lines():
        print(line)
    if args.json:
        args.json.write_text(json.dumps(result.__dict__, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
