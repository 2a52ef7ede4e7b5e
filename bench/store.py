"""Screen pop lookups against a big store: 1,000,000 customers and 10,000,000 interactions.

    python bench/store.py                      # SQLite, then PostgreSQL if it answers
    python bench/store.py --quick              # 100,000 customers, 1,000,000 interactions
    python bench/store.py --customers 1000000 --interactions 10000000 --lookups 5000
    nice python bench/store.py --build-only    # build both data sets at low priority, measure later
    python bench/store.py --explain            # print the plan of the pop's statement on each store
    python bench/store.py --no-postgres --cold # SQLite with its file evicted from the OS page cache first
    python bench/store.py --quick --compare e5aae5f   # also the pop as it was at that commit

The data set: customers with a segment, lifetime value and churn flag, one
phone each and a second phone for one in five, marketing consents (some
withdrawn later) for about half and survey consents for a third, the
interactions spread at random over the customers and over 500 agents, and as
many tickets as customers (a fifth of them open or pending), so every part of
the pop's statement has rows to read. It is built once per size and data
version (a SQLite file under /tmp, the PostgreSQL database `bench`, never
`test`; bench/import_csv.py empties `bench`, and the next run here builds it
again, as it does both when the migrations' head has moved) through the
project's own migrations, then bulk-loaded without the ORM. The tables'
secondary indexes are dropped for the load and created again from the migrated
definitions, and the build checks that the schema it leaves is the one the
migrations made.

The measurement goes through the product's code path: ScreenPopLookup (with
config/offers.yaml) on the project's async engine, one lookup at a time, 80%
of the numbers known. In the same run, a baseline: a primary-key lookup of one
customer through the same session machinery, so the ratio shows what the pop
costs beyond the cheapest possible round trip. `--compare REV` loads
crm/screenpop.py as it was at REV (git show) and times that pop too,
interleaved with the others on the same data: what a change to the pop's
statement costs, free of the machine's drift between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import event, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contactcentre.config import DEFAULT_CONFIG  # noqa: E402
from contactcentre.crm.models import Customer  # noqa: E402
from contactcentre.crm.offers import load_offers  # noqa: E402
from contactcentre.crm.screenpop import ScreenPopLookup  # noqa: E402
from contactcentre.crm.seed import FIRST, LAST, demo_phone  # noqa: E402
from contactcentre.crm.store import alembic_config, create_engine, session_factory, upgrade_sync  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "bench"  # never `test`: the suite empties that one
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
PG_ENGINE_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"
DATA_VERSION = "consents-tickets"  # bump when the generated rows change, so an old build is not reused
AGENTS = 500
SEGMENTS = ["consumer"] * 4 + ["business"]
TIERS = ["basic"] * 6 + ["reactive"] * 3 + ["proactive"]
DISPOSITIONS = ["resolved", "follow-up", "escalated"]
TICKET_STATES = ["open"] * 3 + ["pending"] + ["resolved"] * 6 + ["closed"] * 10
PRIORITIES = ["low", "normal", "normal", "high", "urgent"]
BATCH = 100_000
Stamp = Callable[[datetime], object]  # a datetime as the driver takes it


@dataclass(frozen=True)
class Load:
    """One table's rows, generated in batches of BATCH numbers (rows, or customers where a table has a
    varying number of rows per customer) from 1 to `count`."""

    table: str
    columns: tuple[str, ...]
    rows: Callable[[int, int, dict, Stamp], Iterator[tuple]]  # (start, stop, size, stamp)
    count: Callable[[dict], int]


def agent_rows(start: int, stop: int, _size: dict, _stamp: Stamp) -> Iterator[tuple]:
    for n in range(start, stop):  # no one logs in here: the hash is never checked
        yield n, f"agent{n:04d}", f"Agent {n}", "!", "agent", f"PJSIP/agent{n:04d}"


def customer_rows(start: int, stop: int, size: dict, stamp: Stamp) -> Iterator[tuple]:
    rng, now = random.Random(start), size["now"]
    for n in range(start, stop):
        yield (n, f"AC{n:08d}", rng.choice(FIRST), rng.choice(LAST), rng.choice(TIERS),
               stamp(now - timedelta(days=rng.randint(30, 3000))), rng.choice(SEGMENTS), rng.randint(0, 3000),
               rng.random() < 0.15, "en", False)


def phone_rows(start: int, stop: int, _size: dict, _stamp: Stamp) -> Iterator[tuple]:
    """Customers `start` to `stop`: each one's phone, and for one in five a mobile too."""
    for n in range(start, stop):
        yield n, "phone", demo_phone(n), True, True
        if n % 5 == 0:
            yield n, "phone", f"+447{700000000 + n}", False, False


def consent_rows(start: int, stop: int, size: dict, stamp: Stamp) -> Iterator[tuple]:
    """Customers `start` to `stop`: a marketing answer for half, a later withdrawal for some, surveys."""
    rng, now = random.Random(-start), size["now"]
    for n in range(start, stop):
        if rng.random() < 0.5:
            at = now - timedelta(days=rng.randint(30, 900))
            yield n, "marketing", "phone", True, stamp(at), "bench"
            if rng.random() < 0.2:
                yield n, "marketing", "phone", False, stamp(at + timedelta(days=rng.randint(1, 29))), "bench"
        if rng.random() < 0.3:
            yield n, "survey", "phone", True, stamp(now - timedelta(days=rng.randint(1, 900))), "bench"


def interaction_rows(start: int, stop: int, size: dict, stamp: Stamp) -> Iterator[tuple]:
    rng, now, customers = random.Random(start), size["now"], size["customers"]
    for n in range(start, stop):
        customer = rng.randint(1, customers)
        arrived = now - timedelta(seconds=rng.randint(60, 400 * 86400))
        yield (n, f"b-{n}", "voice", demo_phone(customer), customer, rng.randint(1, AGENTS), stamp(arrived),
               stamp(arrived), stamp(arrived + timedelta(seconds=20)), stamp(arrived + timedelta(seconds=300)),
               rng.choice(DISPOSITIONS), "inbound")


def ticket_rows(start: int, stop: int, size: dict, stamp: Stamp) -> Iterator[tuple]:
    rng, now, customers = random.Random(-start), size["now"], size["customers"]
    for n in range(start, stop):
        opened = now - timedelta(seconds=rng.randint(60, 400 * 86400))
        yield (n, rng.randint(1, customers), f"Case {n}", rng.choice(TICKET_STATES), rng.choice(PRIORITIES),
               rng.randint(1, AGENTS), stamp(opened), stamp(opened), stamp(opened + timedelta(days=3)))


LOADS = (
    Load("agents", ("id", "username", "display_name", "password_hash", "role", "device"), agent_rows,
         lambda size: AGENTS),
    Load("customers", ("id", "account_number", "first_name", "last_name", "tier", "created_at", "segment",
                       "lifetime_value", "churn_risk", "preferred_language", "legal_hold"), customer_rows,
         lambda size: size["customers"]),
    Load("contact_points", ("customer_id", "kind", "value", "verified", "is_primary"), phone_rows,
         lambda size: size["customers"]),
    Load("consents", ("customer_id", "purpose", "channel", "granted", "at", "source"), consent_rows,
         lambda size: size["customers"]),
    Load("interactions", ("id", "call_id", "channel", "caller_number", "customer_id", "agent_id", "arrived_at",
                          "offered_at", "answered_at", "ended_at", "disposition", "direction"), interaction_rows,
         lambda size: size["interactions"]),
    Load("tickets", ("id", "customer_id", "subject", "status", "priority", "owner_id", "created_at", "updated_at",
                     "resolve_due"), ticket_rows, lambda size: size["customers"]),
)
LOADED = tuple(load.table for load in LOADS)


def batches(load: Load, size: dict) -> Iterator[tuple[int, int]]:
    total = load.count(size)
    for start in range(1, total + 1, BATCH):
        yield start, min(start + BATCH, total + 1)


def sqlite_stamp(value: datetime) -> str:
    # SQLAlchemy's DateTime on SQLite is this text form (UTC, naive); isoformat is 5x faster than strftime.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def as_is(value: datetime) -> datetime:  # asyncpg encodes datetimes itself
    return value


def build_sqlite(path: Path, size: dict) -> None:
    """Migrate, load with the tables' secondary indexes dropped, then create them again from the migrated DDL.

    Inserting 10M rows into B-trees keyed by random customer ids and dates
    thrashes the page cache; one sorted build per index afterwards does not.
    The journal and fsyncs are off for the load only (the data are throwaway);
    the product's engine opens the file with its own pragmas.
    """
    if path.exists():
        with sqlite3.connect(path) as db:
            built_at = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        if built_at == size["schema"]:
            print(f"using {path} (built before)")
            return
        print(f"{path} was built at migration {built_at}, not {size['schema']}: building it again")
        path.unlink()
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    upgrade_sync(f"sqlite+aiosqlite:///{tmp}")  # the schema the product migrates to
    db = sqlite3.connect(tmp)
    migrated = sqlite_schema(db)
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                         f" AND tbl_name IN {LOADED}").fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
        db.execute(f"PRAGMA {pragma}")
    for load in LOADS:
        sql = f"INSERT INTO {load.table} ({', '.join(load.columns)}) VALUES ({', '.join('?' * len(load.columns))})"
        rows = sum(db.executemany(sql, load.rows(start, stop, size, sqlite_stamp)).rowcount
                   for start, stop in batches(load, size))
        print(f"  sqlite: {rows:,} {load.table} ({time.perf_counter() - started:.0f} s)", flush=True)
    db.commit()
    loaded = time.perf_counter()
    for _, sql in indexes:
        db.execute(sql)
    db.execute("ANALYZE")
    db.commit()
    if sqlite_schema(db) != migrated:
        raise RuntimeError("the rebuilt schema differs from the migrated one")
    db.close()
    tmp.rename(path)
    print(f"built {path} in {time.perf_counter() - started:.0f} s (indexes {time.perf_counter() - loaded:.0f} s; "
          f"{path.stat().st_size / 2**30:.1f} GiB)")


def sqlite_schema(db: sqlite3.Connection) -> set[tuple]:
    return set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'"))


PG_INDEXES = """
    SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    WHERE t.relname = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)"""
PG_SCHEMA = """
    SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace"""


async def build_postgres(size: dict) -> str | None:
    """Same data as SQLite, by COPY, with the plain indexes built after the load and FK triggers off for it."""
    import asyncpg

    try:
        admin = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL skipped: {exc}")
        return None
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DB):
            await admin.execute(f'CREATE DATABASE "{PG_DB}"')
    finally:
        await admin.close()
    marker = f"bench/store.py {size['customers']}/{size['interactions']}/{DATA_VERSION} at {size['schema']}"
    db = await asyncpg.connect(PG_URL)
    try:
        if await db.fetchval("SELECT obj_description(to_regclass('customers'), 'pg_class')") == marker:
            print(f"using PostgreSQL database {PG_DB} (built before)")
            return PG_ENGINE_URL
        await db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")  # as bench/import_csv.py does
        started = time.perf_counter()
        await asyncio.to_thread(upgrade_sync, PG_ENGINE_URL)
        migrated = set(await db.fetch(PG_SCHEMA))
        indexes = await db.fetch(PG_INDEXES, list(LOADED))
        for name, _ in indexes:
            await db.execute(f'DROP INDEX "{name}"')
        await db.execute("SET session_replication_role = replica")  # no FK trigger per row: the data are consistent
        for load in LOADS:
            rows = 0
            for start, stop in batches(load, size):
                records = list(load.rows(start, stop, size, as_is))
                await db.copy_records_to_table(load.table, records=records, columns=list(load.columns))
                rows += len(records)
            print(f"  postgresql: {rows:,} {load.table} ({time.perf_counter() - started:.0f} s)", flush=True)
        await db.execute("RESET session_replication_role")
        loaded = time.perf_counter()
        await db.execute("SET maintenance_work_mem = '512MB'")
        for _, sql in indexes:
            await db.execute(sql)
        await db.execute("VACUUM ANALYZE")  # as autovacuum leaves a long-lived store: statistics, visibility map
        if set(await db.fetch(PG_SCHEMA)) != migrated:
            raise RuntimeError("the rebuilt schema differs from the migrated one")
        await db.execute(f"COMMENT ON TABLE customers IS '{marker}'")
    finally:
        await db.close()
    print(f"built PostgreSQL {PG_DB} in {time.perf_counter() - started:.0f} s "
          f"(indexes and vacuum {time.perf_counter() - loaded:.0f} s)")
    return PG_ENGINE_URL


async def explain(engine, lookup: ScreenPopLookup, number: str) -> str:
    """The plan of the statement the lookup sends, caught on its way to the driver."""
    sent = []

    def catch(_conn, _cursor, statement, parameters, _context, _many):
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", catch)
    await lookup.lookup(number, "")
    event.remove(engine.sync_engine, "before_cursor_execute", catch)
    statement, parameters = sent[-1]
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) ")
                                          + statement, parameters)
        return "\n".join(str(row[-1]) if sqlite else row[0] for row in rows)


def screenpop_at(rev: str):
    """The ScreenPopLookup class of crm/screenpop.py as it was at `rev`, beside today's models."""
    source = subprocess.run(["git", "show", f"{rev}:contactcentre/crm/screenpop.py"], check=True,
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent).stdout
    path = Path(tempfile.mkdtemp()) / f"screenpop_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"screenpop_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.ScreenPopLookup


async def measure(url: str, customers: int, lookups: int, compare: str | None, show_plan: bool) -> dict:
    engine = create_engine(url)
    sessions = session_factory(engine)
    lookup = ScreenPopLookup(sessions, "GB", 5, load_offers(DEFAULT_CONFIG.parent / "offers.yaml"))
    before = screenpop_at(compare)(sessions, "GB", 5) if compare else None
    if show_plan:
        print(await explain(engine, lookup, demo_phone(customers // 2)))
    rng = random.Random(42)
    numbers = [demo_phone(rng.randint(1, customers)) if rng.random() < 0.8 else f"+1999555{rng.randint(0, 9999):04d}"
               for _ in range(lookups)]
    ids = [rng.randint(1, customers) for _ in range(lookups)]
    for number in numbers[:200]:  # warm the pool and the caches
        await lookup.lookup(number, "")
        if before:
            await before.lookup(number, "")
    pop_ms, base_ms, before_ms, found, offers, load = [], [], [], 0, 0, os.getloadavg()[0]
    for n, (number, customer_id) in enumerate(zip(numbers, ids, strict=True)):
        t0 = time.perf_counter()
        async with sessions() as session:
            await session.scalar(select(Customer.id).where(Customer.id == customer_id))
        base_ms.append((time.perf_counter() - t0) * 1000)
        # The second lookup of a number finds the customer's pages cached by the first: take turns at going first.
        if before and n % 2:
            before_ms.append((await timed(before.lookup(number, "")))[1])
        pop, ms = await timed(lookup.lookup(number, ""))
        pop_ms.append(ms)
        if before and not n % 2:
            before_ms.append((await timed(before.lookup(number, "")))[1])
        found += pop.customer is not None
        offers += pop.customer is not None and pop.customer.offer is not None
    await engine.dispose()
    return {"pop": pop_ms, "base": base_ms, "before": before_ms, "found": found, "offers": offers,
            "load": (load, os.getloadavg()[0])}


async def timed(lookup) -> tuple:
    started = time.perf_counter()
    result = await lookup
    return result, (time.perf_counter() - started) * 1000


def evict(path: Path) -> None:
    # Only this file's pages leave the cache: other processes' cached files stay where they are.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def report(name: str, result: dict, lookups: int) -> None:
    pop, base = result["pop"], result["base"]
    p50, p99 = percentile(pop, 0.5), percentile(pop, 0.99)
    b50, b99 = percentile(base, 0.5), percentile(base, 0.99)
    print(f"{name}: {lookups:,} pops ({result['found']:,} known callers, {result['offers']:,} offers): "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
          f"max {max(pop):.2f} ms | baseline primary-key lookup p50 {b50:.2f} ms, p99 {b99:.2f} ms | "
          f"pop/baseline p50 {p50 / b50:.2f}x, p99 {p99 / b99:.2f}x | target p99 < 5 ms: "
          f"{'met' if p99 < 5 else 'MISSED'} | load average {result['load'][0]:.1f} -> {result['load'][1]:.1f}")
    if result["before"]:
        o50, o99 = percentile(result["before"], 0.5), percentile(result["before"], 0.99)
        print(f"  the pop as it was: p50 {o50:.2f} ms, p99 {o99:.2f} ms | before/baseline p50 {o50 / b50:.2f}x, "
              f"p99 {o99 / b99:.2f}x | now/before p50 {p50 / o50:.2f}x, p99 {p99 / o99:.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="100,000 customers, 1,000,000 interactions")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--compare", metavar="REV", help="also time crm/screenpop.py as it was at this commit")
    parser.add_argument("--cold", action="store_true",
                        help="evict the SQLite file from the OS page cache first (as after a reboot)")
    parser.add_argument("--explain", action="store_true", help="print the pop statement's plan on each store")
    parser.add_argument("--build-only", action="store_true",
                        help="build the data sets (e.g. under nice), measure later")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.interactions = 100_000, 1_000_000
    print(f"{args.customers:,} customers, {args.interactions:,} interactions, {args.lookups:,} lookups; "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    size = {"customers": args.customers, "interactions": args.interactions, "now": datetime.now(UTC),
            "schema": ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()}
    path = Path(f"/tmp/cc-bench-store-{args.customers}-{args.interactions}-{DATA_VERSION}.db")
    await asyncio.to_thread(build_sqlite, path, size)
    if args.cold:
        evict(path)
    if not args.build_only:
        sqlite = await measure(f"sqlite+aiosqlite:///{path}", args.customers, args.lookups, args.compare,
                               args.explain)
        report("SQLite", sqlite, args.lookups)
    if args.no_postgres:
        return
    url = await build_postgres(size)
    if url and not args.build_only:
        postgres = await measure(url, args.customers, args.lookups, args.compare, args.explain)
        report("PostgreSQL", postgres, args.lookups)


if __name__ == "__main__":
    asyncio.run(main())
