"""CSV customer import: rows per second on SQLite and PostgreSQL.

    python bench/import_csv.py                 # 100,000 rows, SQLite, then PostgreSQL if reachable
    python bench/import_csv.py --rows 10000 --no-postgres
    python bench/import_csv.py --profile       # and the top of a cProfile of each import

The bench writes a customers CSV into a temporary directory: every row has a
London number in national form (so each one goes through phonenumbers), half
have an e-mail address and a second (mobile) number, every row has an address,
and a few bad rows are mixed in. It then times `import_customers` into a fresh
store: a SQLite file in the same directory, and the PostgreSQL database `bench`
(created if missing, its schema dropped first). It never touches the `test`
database, which the test suite empties at will.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from contactcentre.crm.fields import FieldError  # noqa: E402
from contactcentre.crm.importer import (  # noqa: E402
    CUSTOMER_COLUMNS,
    ImportReport,
    check_customer,
    import_customers,
    read_table,
)
from contactcentre.crm.seed import FIRST, LAST  # noqa: E402
from contactcentre.crm.store import create_engine, session_factory, upgrade  # noqa: E402

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"  # never `test`: the suite empties that one
COLUMNS = (*CUSTOMER_COLUMNS, "address_line1", "address_line2", "city", "postcode", "country")
BAD_ROWS = [  # one of each common mistake
    ["BAD1", "", "Doe", "basic", "", "en", "020 7946 0001", "", "2020-01-01", "", "", "", "", ""],
    ["BAD2", "Jane", "Doe", "basic", "", "en", "12", "", "2020-01-01", "", "", "", "", ""],
    ["BAD3", "Jane", "Doe", "gold", "", "en", "020 7946 0003", "", "2020-01-01", "", "", "", "", ""],
    ["BAD4", "Jane", "Doe", "basic", "", "en", "020 7946 0004", "jane@", "2020-01-01", "", "", "", "", ""],
    ["BAD5", "Jane", "Doe", "basic", "", "en", "020 7946 0005", "", "2020-31-01", "", "", "", "", ""],
]


def write_customers(path: Path, rows: int) -> None:
    spread = {i * (rows // len(BAD_ROWS)): row for i, row in enumerate(BAD_ROWS)}
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(rows):
            writer.writerow(_row(n))
            if n in spread:
                writer.writerow(spread[n])


def _row(n: int) -> list[str]:
    first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
    phone = f"020 7{n // 10000:03d} {n % 10000:04d}"
    extra = n % 2 == 0
    if extra:
        phone += f";07700 {n // 1000:03d}{n % 1000:03d}"
    email = f"{first}.{last}.{n}@example.org".lower() if extra else ""
    return [f"IM{n:08d}", first, last, ("basic", "reactive", "proactive")[n % 3], "retail", "en", phone, email,
            f"20{10 + n % 15}-0{1 + n % 9}-1{n % 10}", f"{n} High Street", "", "London", f"E{n % 20} {n % 9}AA",
            "GB"]


def checked_only(path: Path) -> tuple[float, int]:
    """Seconds to read the file and check every row with no store (the baseline), and the rows rejected."""
    started, today, rejected = time.perf_counter(), datetime.now(UTC), 0
    for row in read_table(path, CUSTOMER_COLUMNS)[1]:
        try:
            check_customer(row, "GB", today)
        except FieldError:
            rejected += 1
    return time.perf_counter() - started, rejected


async def timed_import(url: str, path: Path, profile: bool) -> tuple[float, ImportReport]:
    await upgrade(url)
    engine = create_engine(url)
    profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = await import_customers(session_factory(engine), path, "GB")
        seconds = time.perf_counter() - started
    finally:
        if profiler:
            profiler.disable()
        await engine.dispose()
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return seconds, report


async def fresh_postgres() -> bool:
    """Create the bench database if missing and empty it; False if PostgreSQL does not answer."""
    parsed = make_url(POSTGRES)
    connect = {"host": parsed.host, "port": parsed.port or 5432, "user": parsed.username,
               "password": parsed.password}
    try:
        admin = await asyncio.wait_for(asyncpg.connect(database="postgres", **connect), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"PostgreSQL skipped: {exc.__class__.__name__}: {exc}")
        return False
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'bench'"):
            await admin.execute("CREATE DATABASE bench")
    finally:
        await admin.close()
    bench = await asyncpg.connect(database="bench", **connect)
    try:
        await bench.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await bench.close()
    return True


def show(name: str, seconds: float, report: ImportReport, baseline: float) -> None:
    print(f"{name:10} {report.rows:>9,} rows  {report.imported:>9,} imported  {len(report.rejected):>3} rejected  "
          f"{seconds:6.1f} s  {report.rows / seconds:>8,.0f} rows/s  {seconds / baseline:4.1f}x the baseline  "
          f"load average {os.getloadavg()[0]:.1f}")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "customers.csv"
        write_customers(path, args.rows)
        print(f"{path.stat().st_size / 2**20:.1f} MiB, {args.rows + len(BAD_ROWS):,} rows; "
              f"load average {os.getloadavg()[0]:.1f}")
        baseline, rejected = checked_only(path)
        print(f"baseline: read and check every row, no store: {baseline:.1f} s ({rejected} rejected)")
        sqlite = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        show("SQLite", *await timed_import(sqlite, path, args.profile), baseline)
        if args.no_postgres or not await fresh_postgres():
            return
        show("PostgreSQL", *await timed_import(POSTGRES, path, args.profile), baseline)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="good rows to write (default: 100,000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of each import")
    asyncio.run(main(parser.parse_args()))
