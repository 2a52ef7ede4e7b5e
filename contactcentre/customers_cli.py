"""`contactcentre import customers|transactions FILE` and `contactcentre customers duplicates|merge`.

Exit status: 0 when every row was imported, 1 when some rows were rejected (they
are listed in the report file), 2 when the file itself cannot be imported (not
UTF-8, a header column missing, empty): then nothing was imported. A refused
merge (unknown or erased customer, no reason) exits with 2 and changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from contactcentre.config import Settings

SHOWN_REJECTIONS = 10  # the rest are in the report file


def add_customer_commands(commands: argparse._SubParsersAction) -> None:
    imports = commands.add_parser("import", help="import customers or transactions from CSV (see docs/IMPORT.md)")
    kinds = imports.add_subparsers(title="import commands", metavar="KIND")
    for kind in ("customers", "transactions"):
        command = kinds.add_parser(kind, help=f"import {kind} from a UTF-8 CSV file")
        command.add_argument("file", type=Path, metavar="FILE")
        command.add_argument("--report", type=Path, default=None, metavar="FILE",
                             help="where to write the rejected rows (default: FILE.rejected.csv beside FILE)")
        command.set_defaults(run=_import, kind=kind)

    customers = commands.add_parser("customers", help="duplicate customers: list them, merge them")
    actions = customers.add_subparsers(title="customers commands", metavar="ACTION")
    duplicates = actions.add_parser("duplicates", help="list pairs of customers that look like the same person")
    duplicates.set_defaults(run=_duplicates)
    merge = actions.add_parser("merge", help="move everything of MERGE to KEEP and delete MERGE (audited)")
    merge.add_argument("keep", type=int, metavar="KEEP", help="id of the customer to keep")
    merge.add_argument("merge", type=int, metavar="MERGE", help="id of the customer merged into KEEP")
    merge.add_argument("--reason", required=True, help="why, for the audit trail")
    merge.set_defaults(run=_merge)


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from contactcentre.crm.importer import ImportFileError, write_rejections

    try:
        report = asyncio.run(_import_async(settings, args.kind, args.file))
    except ImportFileError as exc:
        print(f"contactcentre: import {args.kind}: {args.file}: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: {report.imported:,} of {report.rows:,} {args.kind} imported, "
          f"{len(report.rejected):,} rejected")
    if not report.rejected:
        return 0
    report_path = args.report or args.file.with_name(f"{args.file.stem}.rejected.csv")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    write_rejections(report, report_path)
    for rejection in report.rejected[:SHOWN_REJECTIONS]:
        print(f"  line {rejection.line}: {rejection.reason}")
    print(f"rejected rows, with line numbers and reasons: {report_path}")
    return 1


async def _import_async(settings: Settings, kind: str, path: Path):
    from contactcentre.crm.importer import import_customers, import_transactions

    columns = (TextColumn(f"importing {kind}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(kind, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if kind == "customers":
            def action(sessions):
                return import_customers(sessions, path, settings.crm.default_region, progress)
        else:
            def action(sessions):
                return import_transactions(sessions, path, progress)
        return await _with_store(settings.database.url, action)


async def _with_store(url: str, action):
    from contactcentre.crm.store import create_engine, session_factory, upgrade

    await upgrade(url)
    engine = create_engine(url)
    try:
        return await action(session_factory(engine))
    finally:
        await engine.dispose()


def _duplicates(settings: Settings, args: argparse.Namespace) -> int:
    from contactcentre.crm.merge import find_duplicates

    pairs = asyncio.run(_with_store(settings.database.url, find_duplicates))
    for pair in pairs:
        print(f"{pair.keep_id}\t{pair.merge_id}\t{pair.reason}")
    print(f"{len(pairs)} proposed merge(s); merge one with: contactcentre customers merge KEEP MERGE --reason TEXT",
          file=sys.stderr)
    return 0


def _merge(settings: Settings, args: argparse.Namespace) -> int:
    from contactcentre.crm.merge import MergeError, merge

    if not args.reason.strip():
        print("contactcentre: customers merge: --reason: must not be empty", file=sys.stderr)
        return 2
    # No console user runs the CLI: the audit row names the operating-system user instead.
    reason = f"{args.reason} (command line, {getpass.getuser()})"
    try:
        asyncio.run(_with_store(settings.database.url,
                                lambda sessions: merge(sessions, args.keep, args.merge, None, reason)))
    except MergeError as exc:
        print(f"contactcentre: customers merge: {exc}", file=sys.stderr)
        return 2
    print(f"merged customer {args.merge} into {args.keep}")
    return 0
