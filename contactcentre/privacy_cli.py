"""`contactcentre privacy export|erase CUSTOMER`: a customer's rights from the command line.

CUSTOMER is a customer id or an account number. The audit entries these write
have no actor: the operator at the command line is not a console user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from contactcentre.config import Settings


def add_privacy_commands(commands: argparse._SubParsersAction) -> None:
    privacy = commands.add_parser("privacy", help="a customer's data: export it (right of access) or erase it")
    actions = privacy.add_subparsers(title="privacy commands", metavar="ACTION")
    export = actions.add_parser("export", help="everything held about a customer, as JSON")
    export.add_argument("customer", metavar="CUSTOMER", help="customer id or account number")
    export.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(run=_export)
    erase = actions.add_parser("erase", help="erase a customer's personal data, keeping anonymous figures")
    erase.add_argument("customer", metavar="CUSTOMER", help="customer id or account number")
    erase.add_argument("--reason", required=True, help="why, for the audit trail (e.g. the request's reference)")
    erase.set_defaults(run=_erase)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_with_store(settings.database.url, _export_async, args))


def _erase(settings: Settings, args: argparse.Namespace) -> int:
    if not args.reason.strip():
        print("contactcentre: privacy erase: --reason: must not be empty", file=sys.stderr)
        return 2
    return asyncio.run(_with_store(settings.database.url, _erase_async, args))


async def _with_store(url: str, action, args: argparse.Namespace) -> int:
    from contactcentre.crm.privacy import CustomerNotFound, ErasureRefused
    from contactcentre.crm.store import create_engine, session_factory, upgrade

    await upgrade(url)
    engine = create_engine(url)
    try:
        return await action(session_factory(engine), args)
    except (CustomerNotFound, ErasureRefused) as exc:
        print(f"contactcentre: privacy: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


async def _export_async(sessions, args: argparse.Namespace) -> int:
    from contactcentre.crm.privacy import export_customer, find_customer_id

    bundle = await export_customer(sessions, await find_customer_id(sessions, args.customer), None)
    text = json.dumps(bundle, indent=2, ensure_ascii=False)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n", encoding="utf-8")
        print(f"exported customer {bundle['customer']['id']} to {args.out}", file=sys.stderr)
    return 0


async def _erase_async(sessions, args: argparse.Namespace) -> int:
    from contactcentre.crm.privacy import erase_customer, find_customer_id

    customer_id = await find_customer_id(sessions, args.customer)
    erased_at = await erase_customer(sessions, customer_id, None, args.reason)
    print(f"erased customer {customer_id} at {erased_at.isoformat(timespec='seconds')}")
    return 0
