"""Screen pop lookups against a big store: 1,000,000 customers and 10,000,000 interactions.

    python bench/store.py                      # SQLite, then PostgreSQL if it answers
    python bench/store.py --quick              # 100,000 customers, 1,000,000 interactions
    python bench/store.py --customers 1000000 --interactions 10000000 --lookups 5000
    python bench/store.py --quick --compare e5aae5f   # also the pop as it was at that commit

The data set is built once per size (SQLite file under /tmp, PostgreSQL database
`bench_store_<data version>`) through the project's own migrations, then bulk-loaded without
the ORM: customers with a segment, lifetime value and churn flag, a second
phone for one in five, marketing consents (some withdrawn later) for about
half and survey consents for a third, so the pop's offer and phone subqueries
have rows to read. The measurement goes through the product's code path:
ScreenPopLookup (with config/offers.yaml) on the project's async engine, one
lookup at a time, 80% of the numbers known. In the same run, a baseline: a
primary-key lookup of one customer through the same session machinery, so the
ratio shows what the pop costs beyond the cheapest possible round trip.
`--compare REV` loads crm/screenpop.py as it was at REV (git show) and times
that pop too, interleaved with the others on the same data: what a change to
the pop's statement costs, free of the machine's drift between runs.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contactcentre.config import DEFAULT_CONFIG  # noqa: E402
from contactcentre.crm.models import Customer  # noqa: E402
from contactcentre.crm.offers import load_offers  # noqa: E402
from contactcentre.crm.screenpop import ScreenPopLookup  # noqa: E402
from contactcentre.crm.seed import FIRST, LAST, demo_phone  # noqa: E402
from contactcentre.crm.store import create_engine, session_factory, upgrade_sync  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATA_VERSION = "consents"  # bump when the generated rows change, so an old build is not reused
PG_DB = f"bench_store_{DATA_VERSION}"
SEGMENTS = ["consumer"] * 4 + ["business"]
TIERS = ["basic"] * 6 + ["reactive"] * 3 + ["proactive"]
DISPOSITIONS = ["resolved", "follow-up", "escalated"]
BATCH = 100_000


def customer_rows(start: int, stop: int, now: datetime):
    rng = random.Random(start)
    for n in range(start, stop):
        yield (n, f"AC{n:08d}", rng.choice(FIRST), rng.choice(LAST), rng.choice(TIERS),
               now - timedelta(days=rng.randint(30, 3000)), rng.choice(SEGMENTS), rng.randint(0, 3000),
               rng.random() < 0.15)


def second_phone_rows(start: int, stop: int):
    """One customer in five also has a mobile: (customer, number)."""
    return [(n, f"+447{700000000 + n}") for n in range(start, stop) if n % 5 == 0]


def consent_rows(start: int, stop: int, now: datetime):
    """(customer, purpose, granted, at): a marketing answer for half, a later withdrawal for some, surveys."""
    rng = random.Random(-start)
    for n in range(start, stop):
        if rng.random() < 0.5:
            at = now - timedelta(days=rng.randint(30, 900))
            yield (n, "marketing", True, at)
            if rng.random() < 0.2:
                yield (n, "marketing", False, at + timedelta(days=rng.randint(1, 29)))
        if rng.random() < 0.3:
            yield (n, "survey", True, now - timedelta(days=rng.randint(1, 900)))


def interaction_rows(start: int, stop: int, customers: int, now: datetime):
    rng = random.Random(start)
    for n in range(start, stop):
        customer = rng.randint(1, customers)
        arrived = now - timedelta(seconds=rng.randint(60, 400 * 86400))
        yield (n, f"b-{n}", "voice", demo_phone(customer), customer, arrived, arrived,
               arrived + timedelta(seconds=20), arrived + timedelta(seconds=300), rng.choice(DISPOSITIONS),
               "inbound")


CUSTOMER_SQL = ("INSERT INTO customers (id, account_number, first_name, last_name, tier, created_at, segment, "
                "lifetime_value, churn_risk, preferred_language, legal_hold) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'en', 0)")
PHONE_SQL = "INSERT INTO contact_points (customer_id, kind, value, verified, is_primary) VALUES (?, 'phone', ?, 1, 1)"
MOBILE_SQL = "INSERT INTO contact_points (customer_id, kind, value, verified, is_primary) VALUES (?, 'phone', ?, 0, 0)"
CONSENT_SQL = ("INSERT INTO consents (customer_id, purpose, channel, granted, at, source) "
               "VALUES (?, ?, 'phone', ?, ?, 'bench')")
INTERACTION_SQL = ("INSERT INTO interactions (id, call_id, channel, caller_number, customer_id, arrived_at, offered_at,"
                   " answered_at, ended_at, disposition, direction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def build_sqlite(path: Path, customers: int, interactions: int) -> None:
    if path.exists():
        print(f"using {path} (built before)")
        return
    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    upgrade_sync(f"sqlite+aiosqlite:///{tmp}")  # the schema the product migrates to
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA journal_mode=OFF")  # a bulk load of throwaway data: no journal needed
    db.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC)

    def iso(rows, at):  # sqlite3 stores datetimes as SQLAlchemy's text format
        for row in rows:
            yield tuple(v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in row)

    for start in range(1, customers + 1, BATCH):
        stop = min(start + BATCH, customers + 1)
        db.executemany(CUSTOMER_SQL, iso(customer_rows(start, stop, now), 5))
        db.executemany(PHONE_SQL, ((n, demo_phone(n)) for n in range(start, stop)))
        db.executemany(MOBILE_SQL, second_phone_rows(start, stop))
        db.executemany(CONSENT_SQL, iso(consent_rows(start, stop, now), 3))
        db.commit()
    for start in range(1, interactions + 1, BATCH):
        stop = min(start + BATCH, interactions + 1)
        db.executemany(INTERACTION_SQL, iso(interaction_rows(start, stop, customers, now), 5))
        db.commit()
        if start // BATCH % 10 == 0:
            print(f"  sqlite: {stop - 1:,} interactions", flush=True)
    db.execute("ANALYZE")
    db.commit()
    db.close()
    tmp.rename(path)
    print(f"built {path} in {time.perf_counter() - started:.0f} s ({path.stat().st_size / 2**30:.1f} GiB)")


async def build_postgres(customers: int, interactions: int) -> str | None:
    import asyncpg

    try:
        admin = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL skipped: {exc}")
        return None
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_DB}"
    marker = f"{customers}/{interactions}/{DATA_VERSION}"
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DB)
    if exists:
        db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{PG_DB}")
        built = await db.fetchval("SELECT obj_description('customers'::regclass)") if await db.fetchval(
            "SELECT to_regclass('customers') IS NOT NULL") else None
        await db.close()
        if built == marker:
            await admin.close()
            print(f"using PostgreSQL database {PG_DB} (built before)")
            return url
        await admin.execute(f'DROP DATABASE "{PG_DB}"')
    await admin.execute(f'CREATE DATABASE "{PG_DB}"')
    await admin.close()
    started = time.perf_counter()
    await asyncio.to_thread(upgrade_sync, url)
    db = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{PG_DB}")
    now = datetime.now(UTC)
    for start in range(1, customers + 1, BATCH):
        stop = min(start + BATCH, customers + 1)
        await db.copy_records_to_table(
            "customers", records=[(*r, "en", False) for r in customer_rows(start, stop, now)],
            columns=["id", "account_number", "first_name", "last_name", "tier", "created_at", "segment",
                     "lifetime_value", "churn_risk", "preferred_language", "legal_hold"])
        await db.copy_records_to_table(
            "contact_points", records=[(n, "phone", demo_phone(n), True, True) for n in range(start, stop)]
            + [(n, "phone", mobile, False, False) for n, mobile in second_phone_rows(start, stop)],
            columns=["customer_id", "kind", "value", "verified", "is_primary"])
        await db.copy_records_to_table(
            "consents", records=[(*r, "phone", "bench") for r in consent_rows(start, stop, now)],
            columns=["customer_id", "purpose", "granted", "at", "channel", "source"])
    for start in range(1, interactions + 1, BATCH):
        stop = min(start + BATCH, interactions + 1)
        await db.copy_records_to_table(
            "interactions", records=list(interaction_rows(start, stop, customers, now)),
            columns=["id", "call_id", "channel", "caller_number", "customer_id", "arrived_at", "offered_at",
                     "answered_at", "ended_at", "disposition", "direction"])
        if start // BATCH % 10 == 0:
            print(f"  postgresql: {stop - 1:,} interactions", flush=True)
    await db.execute("ANALYZE")
    await db.execute(f"COMMENT ON TABLE customers IS '{marker}'")
    await db.close()
    print(f"built PostgreSQL {PG_DB} in {time.perf_counter() - started:.0f} s")
    return url


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


async def measure(url: str, customers: int, lookups: int, compare: str | None) -> dict:
    engine = create_engine(url)
    sessions = session_factory(engine)
    lookup = ScreenPopLookup(sessions, "GB", 5, load_offers(DEFAULT_CONFIG.parent / "offers.yaml"))
    before = screenpop_at(compare)(sessions, "GB", 5) if compare else None
    rng = random.Random(42)
    numbers = [demo_phone(rng.randint(1, customers)) if rng.random() < 0.8 else f"+1999555{rng.randint(0, 9999):04d}"
               for _ in range(lookups)]
    ids = [rng.randint(1, customers) for _ in range(lookups)]
    for number in numbers[:200]:  # warm the pool and the caches
        await lookup.lookup(number, "")
        if before:
            await before.lookup(number, "")
    pop_ms, base_ms, before_ms, found, offers = [], [], [], 0, 0
    for number, customer_id in zip(numbers, ids, strict=True):
        t0 = time.perf_counter()
        async with sessions() as session:
            await session.scalar(select(Customer.id).where(Customer.id == customer_id))
        t1 = time.perf_counter()
        pop = await lookup.lookup(number, "")
        t2 = time.perf_counter()
        if before:
            await before.lookup(number, "")
            before_ms.append((time.perf_counter() - t2) * 1000)
        base_ms.append((t1 - t0) * 1000)
        pop_ms.append((t2 - t1) * 1000)
        found += pop.customer is not None
        offers += pop.customer is not None and pop.customer.offer is not None
    await engine.dispose()
    return {"pop": pop_ms, "base": base_ms, "before": before_ms, "found": found, "offers": offers}


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
          f"{'met' if p99 < 5 else 'MISSED'}")
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
    args = parser.parse_args()
    if args.quick:
        args.customers, args.interactions = 100_000, 1_000_000
    print(f"{args.customers:,} customers, {args.interactions:,} interactions, {args.lookups:,} lookups; "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    path = Path(f"/tmp/cc-bench-store-{args.customers}-{args.interactions}-{DATA_VERSION}.db")
    await asyncio.to_thread(build_sqlite, path, args.customers, args.interactions)
    report("SQLite", await measure(f"sqlite+aiosqlite:///{path}", args.customers, args.lookups, args.compare),
           args.lookups)
    if not args.no_postgres:
        url = await build_postgres(args.customers, args.interactions)
        if url:
            report("PostgreSQL", await measure(url, args.customers, args.lookups, args.compare), args.lookups)


if __name__ == "__main__":
    asyncio.run(main())
