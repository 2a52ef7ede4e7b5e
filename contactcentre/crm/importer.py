"""Import customers and transactions from CSV files.

Files are UTF-8 (a BOM is allowed), comma-separated, with a header line.
Header names are matched case-insensitively; unknown columns are ignored.

Customers (`contactcentre import customers FILE`):

    account_number      required, unique, at most 32 characters
    first_name          required
    last_name           required
    tier                basic | reactive | proactive (blank: basic)
    segment             optional, at most 32 characters
    preferred_language  optional language tag such as en, fr, pt-BR (blank: en)
    phone               one or more numbers separated by ';', any written form;
                        stored in E.164 (national forms read in the default region)
    email               optional; stored in lower case
    customer_since      optional ISO date, 2024-03-01 (blank: the day of the import)
    address_line1, address_line2, city, postcode, country
                        optional columns; when a row has any of them, line1, city
                        and a two-letter country are required

A customer needs at least one phone number or an e-mail address. The first
phone and the e-mail become the primary contact points.

Transactions (`contactcentre import transactions FILE`):

    account_number  required; the customer must already be in the store
    reference       required, unique
    kind            order | payment | refund
    amount          required, 0 or more, at most 2 decimals (12.50)
    currency        ISO 4217 code, EUR
    occurred_at     ISO date and time; without a UTC offset it is read as UTC
    items           optional JSON list of objects, [{"sku": "R1", "quantity": 1}]

Every row is checked before anything is written. A rejected row is reported
with its line number, the first column found wrong and why, and is not
written at all. Rows that pass are inserted in batches, each batch in one
transaction, so a customer is never stored without its contact points.
Duplicates are rejected both within the file (naming the earlier line) and
against the store (naming the customer that already owns the value).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import ARRAY, ColumnElement, any_, insert, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcentre.crm.fields import FieldError, email_address, language_tag, phone_number
from contactcentre.crm.models import (
    Address,
    ContactPoint,
    Customer,
    ServiceTier,
    Transaction,
)

CUSTOMER_COLUMNS = ("account_number", "first_name", "last_name", "tier", "segment", "preferred_language", "phone",
                    "email", "customer_since")
ADDRESS_COLUMNS = ("address_line1", "address_line2", "city", "postcode", "country")
TRANSACTION_COLUMNS = ("account_number", "reference", "kind", "amount", "currency", "occurred_at", "items")
TRANSACTION_KINDS = ("order", "payment", "refund")

# Rows per transaction: large enough that the per-statement overhead vanishes,
# small enough that the IN (...) lists of the duplicate checks stay far below
# SQLite's 32,766 bound-parameter limit (PostgreSQL gets one array; see _one_of).
BATCH = 1000

CURRENCY = re.compile(r"^[A-Z]{3}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")

Progress = Callable[[int, int], None]  # (rows done, rows in the file)


class ImportFileError(ValueError):
    """The file as a whole cannot be read: nothing was imported."""


@dataclass(frozen=True)
class Rejection:
    line: int
    column: str
    reason: str
    row: dict[str, str]


@dataclass
class ImportReport:
    header: list[str]
    rows: int = 0
    imported: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def reject(self, line: int, row: dict[str, str], error: FieldError) -> None:
        self.rejected.append(Rejection(line, error.field, error.problem, row))


@dataclass
class _Row:
    line: int  # where the record starts: a quoted field may span several lines
    raw: dict[str, str]
    fields: int  # how many fields the record had; the header says how many it should have


@dataclass
class _NewCustomer:
    line: int
    raw: dict[str, str]
    values: dict
    phones: list[str]
    email: str | None
    address: dict | None


@dataclass
class _NewTransaction:
    line: int
    raw: dict[str, str]
    account_number: str
    values: dict


def _no_progress(done: int, total: int) -> None:
    pass


# -- reading the file ---------------------------------------------------------------------------------------------

def read_table(path: Path, columns: Iterable[str]) -> tuple[list[str], list[_Row]]:
    """The header and the non-blank records with their first line number; ImportFileError if unreadable."""
    text = _decode(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    if not any(header):
        raise ImportFileError("the file is empty: expected a header line naming the columns")
    missing = [name for name in columns if name not in header]
    if missing:
        raise ImportFileError(f"missing header column(s): {', '.join(missing)}")
    return header, _records(reader, header)


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(exc.strerror or str(exc)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(f"not UTF-8: byte 0x{data[exc.start]:02x} on line {line}; "
                              f"save the file as UTF-8 and import again") from None


def _records(reader, header: list[str]) -> list[_Row]:
    rows = []
    line = reader.line_num + 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if any(value.strip() for value in record):
                raw = {name: value.strip() for name, value in zip(header, record)}
                rows.append(_Row(start, raw, len(record)))
    except csv.Error as exc:
        raise ImportFileError(f"line {line}: not valid CSV: {exc}") from None
    return rows


def _check_shape(row: _Row, header: list[str]) -> None:
    if row.fields != len(header):
        raise FieldError("", f"expected {len(header)} fields, found {row.fields}")


# -- checking one row ---------------------------------------------------------------------------------------------

def _required(row: dict[str, str], column: str, limit: int) -> str:
    value = row.get(column, "")
    if not value:
        raise FieldError(column, f"{column} is required")
    return _limited(column, value, limit)


def _limited(column: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise FieldError(column, f"{column} is longer than {limit} characters")
    return value


def _enum_value(row: dict[str, str], column: str, allowed: Iterable[str], default: str | None = None) -> str:
    value = row.get(column, "").lower() or default
    allowed = tuple(allowed)
    if value not in allowed:
        raise FieldError(column, f"{column} must be one of {'|'.join(allowed)}, got {row.get(column, '')!r}")
    return value


def _phones(row: dict[str, str], default_region: str) -> list[str]:
    numbers: list[str] = []
    for raw in filter(None, (part.strip() for part in row.get("phone", "").split(";"))):
        number = phone_number(raw, default_region)
        if number not in numbers:  # the same number written twice is one contact point
            numbers.append(number)
    return numbers


def _email(row: dict[str, str]) -> str | None:
    value = row.get("email", "")
    return email_address(value) if value else None


def _customer_since(row: dict[str, str], today: datetime) -> datetime:
    value = row.get("customer_since", "")
    if not value:
        return today
    try:
        since = datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        raise FieldError("customer_since", f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    if since > today:
        raise FieldError("customer_since", f"{value} is in the future")
    return since


def _address(row: dict[str, str]) -> dict | None:
    if not any(row.get(column) for column in ADDRESS_COLUMNS):
        return None
    country = _required(row, "country", 2).upper()
    if not COUNTRY.match(country):
        raise FieldError("country", f"country must be a two-letter ISO code, got {row['country']!r}")
    return {"kind": "home", "line1": _required(row, "address_line1", 200),
            "line2": _limited("address_line2", row.get("address_line2", ""), 200) or None,
            "city": _required(row, "city", 100),
            "postcode": _limited("postcode", row.get("postcode", ""), 20) or None, "country": country}


def check_customer(row: _Row, default_region: str, today: datetime) -> _NewCustomer:
    """The row as rows to insert, or FieldError naming the first wrong column."""
    raw = row.raw
    language = language_tag(raw.get("preferred_language", "") or "en")
    values = {"account_number": _required(raw, "account_number", 32),
              "first_name": _required(raw, "first_name", 100), "last_name": _required(raw, "last_name", 100),
              "tier": ServiceTier(_enum_value(raw, "tier", (t.value for t in ServiceTier), "basic")),
              "segment": _limited("segment", raw.get("segment", ""), 32) or None,
              "preferred_language": language, "created_at": _customer_since(raw, today)}
    phones, email = _phones(raw, default_region), _email(raw)
    if not phones and email is None:
        raise FieldError("phone", "a customer needs at least one phone number or an e-mail address")
    return _NewCustomer(row.line, raw, values, phones, email, _address(raw))


def _amount(row: dict[str, str]) -> Decimal:
    value = row.get("amount", "")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise FieldError("amount", f"{value!r} is not an amount such as 12.50") from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2 or amount.adjusted() >= 10:
        raise FieldError("amount", f"{value!r} is not an amount with at most 10 digits and 2 decimals")
    if amount < 0:
        raise FieldError("amount", f"{value} is negative; a refund is kind=refund with a positive amount")
    return amount


def _occurred_at(row: dict[str, str]) -> datetime:
    value = row.get("occurred_at", "")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError("occurred_at", f"{value!r} is not an ISO date and time (2024-03-01T14:30:00Z)") from None
    # UTC before it is stored: SQLite keeps the wall-clock time and drops the offset.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _items(row: dict[str, str]) -> list | None:
    value = row.get("items", "")
    if not value:
        return None
    try:
        items = json.loads(value)
    except json.JSONDecodeError as exc:
        raise FieldError("items", f"items is not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise FieldError("items", "items must be a JSON list of objects")
    return items


def check_transaction(row: _Row) -> _NewTransaction:
    raw = row.raw
    account_number = _required(raw, "account_number", 32)
    currency = _required(raw, "currency", 3).upper()
    if not CURRENCY.match(currency):
        raise FieldError("currency", f"currency must be a three-letter ISO 4217 code, got {raw['currency']!r}")
    values = {"reference": _required(raw, "reference", 64), "kind": _enum_value(raw, "kind", TRANSACTION_KINDS),
              "amount": _amount(raw), "currency": currency, "occurred_at": _occurred_at(raw), "items": _items(raw)}
    return _NewTransaction(row.line, raw, account_number, values)


# -- duplicates within the file -----------------------------------------------------------------------------------

class _SeenInFile:
    """Which line first used each unique value, so a later line can name it."""

    def __init__(self):
        self._lines: dict[tuple[str, str], int] = {}

    def claim(self, line: int, keys: list[tuple[str, str]]) -> None:
        for column, value in keys:
            first = self._lines.get((column, value))
            if first is not None:
                raise FieldError(column, f"{column} {value} is already on line {first}")
        for key in keys:
            self._lines[key] = line


def _checked(rows: list[_Row], header: list[str], check: Callable[[_Row], object], report: ImportReport) -> list:
    """The rows that pass `check`; the others go into the report."""
    good = []
    for row in rows:
        try:
            _check_shape(row, header)
            good.append(check(row))
        except FieldError as error:
            report.reject(row.line, row.raw, error)
    return good


def _customer_keys(customer: _NewCustomer) -> list[tuple[str, str]]:
    keys = [("account_number", customer.values["account_number"])]
    keys += [("phone", number) for number in customer.phones]
    if customer.email:
        keys.append(("email", customer.email))
    return keys


# -- the store ----------------------------------------------------------------------------------------------------

def _one_of(session: AsyncSession, column, values: Iterable[str]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(one array parameter)`.

    An IN list is one bound parameter per value: SQLAlchemy expands it on each
    run, asyncpg encodes each value as a parameter of its own, and each new
    list length is a new statement to prepare. Over a 30,000-row import that
    was 37% of the importer's CPU on PostgreSQL (4.8 s against 3.0 s). One
    array parameter is one statement whatever the batch holds. SQLite keeps
    the IN list: it has no arrays, and its planner probes the index for each
    value anyway.
    """
    values = list(values)
    if session.bind.dialect.name == "postgresql":
        return column == any_(literal(values, ARRAY(column.type)))
    return column.in_(values)


async def _analyze(sessions: async_sessionmaker, *tables: str) -> None:
    """Give PostgreSQL's planner statistics about the tables being filled (SQLite's needs none).

    Without them (autovacuum off, or a minute behind) PostgreSQL plans the
    duplicate check for a near-empty table: it reads every phone of the store
    through the `kind` prefix of the (kind, value) index and compares each
    with the batch's 1,500 numbers one by one. After five runs it keeps that
    plan as the statement's generic plan, so each batch's check grew with the
    store: 0.5 s at 9,000 phones, a 100,000-row import took 163 s or more.
    ANALYZE also invalidates the plans made before it.
    """
    async with sessions() as session:
        if session.bind.dialect.name != "postgresql":
            return
        await session.execute(text(f"ANALYZE {', '.join(tables)}"))  # our own table names, never input
        await session.commit()


# -- customers ----------------------------------------------------------------------------------------------------

async def _in_batches(rows: list[_Row], header: list[str], check: Callable[[_Row], object],
                      store: Callable[[list], Awaitable[int]], report: ImportReport, progress: Progress,
                      analyze: Callable[[], Awaitable[None]]) -> ImportReport:
    """Check and store a batch at a time, so a bad row costs only itself and memory stays bounded.

    `analyze` runs after the first batch and whenever the rows imported have
    doubled since: 7 times for 100,000 rows.
    """
    analyze_at = 1
    for start in range(0, len(rows), BATCH):
        good = _checked(rows[start:start + BATCH], header, check, report)
        report.imported += await store(good)
        if report.imported >= analyze_at:
            await analyze()
            analyze_at = 2 * report.imported
        progress(min(start + BATCH, len(rows)), len(rows))
    report.rejected.sort(key=lambda r: r.line)
    return report


async def import_customers(sessions: async_sessionmaker, path: Path, default_region: str,
                           progress: Progress = _no_progress) -> ImportReport:
    """Check every row, insert the good ones in batches, and report the rest with line numbers."""
    header, rows = read_table(path, CUSTOMER_COLUMNS)
    report = ImportReport(header, rows=len(rows))
    seen, today = _SeenInFile(), datetime.now(UTC)

    def check(row: _Row) -> _NewCustomer:
        customer = check_customer(row, default_region, today)
        seen.claim(row.line, _customer_keys(customer))
        return customer

    return await _in_batches(rows, header, check, lambda good: _store_customers(sessions, good, report), report,
                             progress, lambda: _analyze(sessions, "customers", "contact_points", "addresses"))


async def _store_customers(sessions: async_sessionmaker, customers: list[_NewCustomer], report: ImportReport) -> int:
    if not customers:
        return 0
    # The check and the inserts share one transaction: the batch goes in whole or not at all.
    async with sessions() as session, session.begin():
        fresh = await _not_in_store(session, customers, report)
        if fresh:
            await _insert_customers(session, fresh)
    return len(fresh)


async def _not_in_store(session: AsyncSession, customers: list[_NewCustomer],
                        report: ImportReport) -> list[_NewCustomer]:
    accounts = {c.values["account_number"] for c in customers}
    taken_accounts = set(await session.scalars(
        select(Customer.account_number).where(_one_of(session, Customer.account_number, accounts))))
    wanted = {"phone": {number for c in customers for number in c.phones},
              "email": {c.email for c in customers if c.email}}
    owners = {}
    for kind, values in wanted.items():
        if not values:
            continue
        # kind first: the unique index is on (kind, value), so this is an index lookup, not a table scan
        owners.update({(kind, value): account for value, account in await session.execute(
            select(ContactPoint.value, Customer.account_number).join(Customer, ContactPoint.customer_id == Customer.id)
            .where(ContactPoint.kind == kind, _one_of(session, ContactPoint.value, values)))})
    fresh = []
    for customer in customers:
        try:
            _check_against_store(customer, taken_accounts, owners)
        except FieldError as error:
            report.reject(customer.line, customer.raw, error)
            continue
        fresh.append(customer)
    return fresh


def _check_against_store(customer: _NewCustomer, taken_accounts: set[str],
                         owners: dict[tuple[str, str], str]) -> None:
    account = customer.values["account_number"]
    if account in taken_accounts:
        raise FieldError("account_number", f"account_number {account} is already in the store")
    for column, value in _customer_keys(customer)[1:]:  # the phones and the e-mail; column == kind
        owner = owners.get((column, value))
        if owner is not None:
            raise FieldError(column, f"{column} {value} already belongs to customer {owner}")


async def _insert_customers(session: AsyncSession, customers: list[_NewCustomer]) -> None:
    # Ids are read back by account number rather than with INSERT ... RETURNING: SQLite cannot
    # promise RETURNING rows in parameter order for a multi-row insert, so SQLAlchemy would fall
    # back to one statement per row, about 10x slower. Inserts go to the tables, not through the
    # ORM's bulk path, which costs another 20% in per-row bookkeeping we do not need.
    await session.execute(insert(Customer.__table__), [c.values for c in customers])
    ids = dict((await session.execute(select(Customer.account_number, Customer.id).where(
        _one_of(session, Customer.account_number, [c.values["account_number"] for c in customers])))).all())
    points, addresses = [], []
    for customer in customers:
        customer_id = ids[customer.values["account_number"]]
        points += [{"customer_id": customer_id, "kind": "phone", "value": number, "is_primary": n == 0}
                   for n, number in enumerate(customer.phones)]
        if customer.email:
            points.append({"customer_id": customer_id, "kind": "email", "value": customer.email, "is_primary": True})
        if customer.address:
            addresses.append({"customer_id": customer_id, **customer.address})
    await session.execute(insert(ContactPoint.__table__), points)
    if addresses:
        await session.execute(insert(Address.__table__), addresses)


# -- transactions -------------------------------------------------------------------------------------------------

async def import_transactions(sessions: async_sessionmaker, path: Path,
                              progress: Progress = _no_progress) -> ImportReport:
    """Check every row, insert the good ones in batches, and report the rest with line numbers."""
    header, rows = read_table(path, TRANSACTION_COLUMNS)
    report = ImportReport(header, rows=len(rows))
    seen = _SeenInFile()

    def check(row: _Row) -> _NewTransaction:
        transaction = check_transaction(row)
        seen.claim(row.line, [("reference", transaction.values["reference"])])
        return transaction

    return await _in_batches(rows, header, check, lambda good: _store_transactions(sessions, good, report), report,
                             progress, lambda: _analyze(sessions, "transactions"))


async def _store_transactions(sessions: async_sessionmaker, transactions: list[_NewTransaction],
                              report: ImportReport) -> int:
    if not transactions:
        return 0
    async with sessions() as session, session.begin():
        customer_ids = dict((await session.execute(
            select(Customer.account_number, Customer.id)
            .where(_one_of(session, Customer.account_number, {t.account_number for t in transactions})))).all())
        taken = set(await session.scalars(select(Transaction.reference).where(
            _one_of(session, Transaction.reference, {t.values["reference"] for t in transactions}))))
        rows = []
        for transaction in transactions:
            try:
                rows.append({"customer_id": _owner(transaction, customer_ids, taken), **transaction.values})
            except FieldError as error:
                report.reject(transaction.line, transaction.raw, error)
        if rows:
            await session.execute(insert(Transaction.__table__), rows)
    return len(rows)


def _owner(transaction: _NewTransaction, customer_ids: dict[str, int], taken: set[str]) -> int:
    reference = transaction.values["reference"]
    if reference in taken:
        raise FieldError("reference", f"reference {reference} is already in the store")
    customer_id = customer_ids.get(transaction.account_number)
    if customer_id is None:
        raise FieldError("account_number", f"no customer has account_number {transaction.account_number}")
    return customer_id


# -- the report file ----------------------------------------------------------------------------------------------

def write_rejections(report: ImportReport, path: Path) -> None:
    """One line per rejected row: its line number, the column, the reason, then the row as read."""
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "reason", *report.header])
        for rejection in report.rejected:
            writer.writerow([rejection.line, rejection.column, rejection.reason,
                             *(rejection.row.get(name, "") for name in report.header)])
