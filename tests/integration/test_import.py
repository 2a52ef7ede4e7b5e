"""CSV import, duplicate proposals and merges, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from contactcentre.crm.importer import import_customers, import_transactions
from contactcentre.crm.merge import find_duplicates, merge
from contactcentre.crm.models import (
    Address,
    AuditLog,
    Callback,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    SurveyResponse,
    Ticket,
    Transaction,
)
from contactcentre.crm.seed import seed_customers

HEADER = ("account_number,first_name,last_name,tier,segment,preferred_language,phone,email,customer_since,"
          "address_line1,address_line2,city,postcode,country")

CUSTOMERS = HEADER + """
AC1,Jane,Doe,basic,retail,en,020 7946 0001;07700 900001,Jane@Example.org,2020-01-15,1 High St,,London,SW1A 1AA,gb
AC2,Amira,Haddad,proactive,,fr,+33 1 23 45 67 89,,2021-05-01,,,,,
AC3,,Novak,basic,,en,020 7946 0003,,2021-05-01,,,,,
AC4,Bogdan,Novak,basic,,en,12,,2021-05-01,,,,,
AC5,Chloe,Martin,basic,,en,,chloe@,2021-05-01,,,,,
AC6,Dmitri,Ivanov,gold,,en,020 7946 0006,,2021-05-01,,,,,
AC7,Elena,Rossi,basic,,en,020 7946 0007,,2021-13-01,,,,,
AC1,Farid,Karimi,basic,,en,020 7946 0008,,2021-05-01,,,,,
AC9,Grace,Okafor,basic,,en,07700 900001,,2021-05-01,,,,,
AC10,Hiro,Tanaka,basic,,en,020 7946 0010
AC11,Ines,Garcia,basic,,en,,,2021-05-01,,,,,
AC12,Jonas,Berg,reactive,,de,020 7946 0012,jonas@example.org,2019-02-03,2 Low Rd,"Flat 2
back door",Leeds,LS1 4AP,GB
AC13,Kofi,Mensah,basic,,en,020 7946 0013,,2021-05-01,3 Side St,,,LS1 4AP,GB
AC14,Lena,Schmidt,basic,,english,020 7946 0014,,2021-05-01,,,,,
AC15,Mateo,Lopez,basic,,en,+44 20 7000 0001,,2021-05-01,,,,,
AC00000002,Nadia,Hassan,basic,,en,020 7946 0016,,2021-05-01,,,,,
AC17,Zoë,O'Brien,,,,,zoe.obrien@example.org,,,,,,
"""

EXPECTED_REJECTIONS = [
    (4, "first_name", "first_name is required"),
    (5, "phone", "'12' is not a possible phone number"),
    (6, "email", "'chloe@' is not an e-mail address"),
    (7, "tier", "tier must be one of basic|reactive|proactive, got 'gold'"),
    (8, "customer_since", "'2021-13-01' is not an ISO date (YYYY-MM-DD)"),
    (9, "account_number", "account_number AC1 is already on line 2"),
    (10, "phone", "phone +447700900001 is already on line 2"),
    (11, "", "expected 14 fields, found 7"),
    (12, "phone", "a customer needs at least one phone number or an e-mail address"),
    (15, "city", "city is required"),  # line 13's record spans lines 13-14
    (16, "preferred_language", "'english' is not a language tag such as en or pt-BR"),
    (17, "phone", "phone +442070000001 already belongs to customer AC00000001"),
    (18, "account_number", "account_number AC00000002 is already in the store"),
]

GOOD = {  # account number -> its contact points
    "AC1": {("phone", "+442079460001", True), ("phone", "+447700900001", False),
            ("email", "jane@example.org", True)},
    "AC2": {("phone", "+33123456789", True)},
    "AC12": {("phone", "+442079460012", True), ("email", "jonas@example.org", True)},
    "AC17": {("email", "zoe.obrien@example.org", True)},
}


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def contact_points_by_account(sessions) -> dict[str, set]:
    async with sessions() as session:
        rows = await session.execute(select(Customer.account_number, ContactPoint.kind, ContactPoint.value,
                                            ContactPoint.is_primary).join(ContactPoint))
    points: dict[str, set] = {}
    for account, kind, value, primary in rows:
        points.setdefault(account, set()).add((kind, value, primary))
    return points


async def counts(sessions) -> tuple[int, ...]:
    async with sessions() as session:
        return tuple([await session.scalar(select(func.count()).select_from(model))
                      for model in (Customer, ContactPoint, Address, Transaction)])


async def test_bad_rows_are_reported_by_line_and_reason_and_leave_nothing(sessions, tmp_path):
    await seed_customers(sessions, 2, history=False)
    report = await import_customers(sessions, write(tmp_path, "customers.csv", CUSTOMERS), "GB")

    assert [(r.line, r.column, r.reason) for r in report.rejected] == EXPECTED_REJECTIONS
    assert (report.rows, report.imported) == (17, 4)
    points = await contact_points_by_account(sessions)
    assert {account: points[account] for account in GOOD} == GOOD
    assert set(points) == set(GOOD) | {"AC00000001", "AC00000002"}  # nothing of a rejected row
    async with sessions() as session:
        jonas = await session.scalar(select(Address).join(Customer).where(Customer.account_number == "AC12"))
        jane = await session.scalar(select(Customer).where(Customer.account_number == "AC1"))
    assert (jonas.line2, jonas.postcode, jonas.country) == ("Flat 2\nback door", "LS1 4AP", "GB")
    assert (jane.tier.value, jane.segment, jane.created_at.date().isoformat()) == ("basic", "retail", "2020-01-15")


async def test_importing_the_same_file_again_rejects_every_row_and_changes_nothing(sessions, tmp_path):
    path = write(tmp_path, "customers.csv", CUSTOMERS)
    await seed_customers(sessions, 2, history=False)
    await import_customers(sessions, path, "GB")
    before = await counts(sessions)

    again = await import_customers(sessions, path, "GB")

    assert again.imported == 0 and len(again.rejected) == again.rows == 17
    reasons = {r.line: r.reason for r in again.rejected}
    assert reasons[2] == "account_number AC1 is already in the store"
    assert reasons[19] == "account_number AC17 is already in the store"
    assert await counts(sessions) == before


async def test_transactions_attach_to_customers_and_bad_rows_are_reported(sessions, tmp_path):
    await import_customers(sessions, write(tmp_path, "customers.csv", CUSTOMERS), "GB")
    path = write(tmp_path, "transactions.csv", """account_number,reference,kind,amount,currency,occurred_at,items
AC1,T1,order,49.90,gbp,2024-03-01T16:30:00+02:00,"[{""sku"": ""R1"", ""quantity"": 1}]"
AC1,T2,refund,10,GBP,2024-03-02 09:00,
AC1,T1,payment,1,GBP,2024-03-02T09:00:00Z,
NOPE,T4,order,1,GBP,2024-03-02T09:00:00Z,
AC2,T5,gift,1,EUR,2024-03-02T09:00:00Z,
AC2,T6,order,1.999,EUR,2024-03-02T09:00:00Z,
AC2,T7,order,-3,EUR,2024-03-02T09:00:00Z,
AC2,T8,order,3,EURO,2024-03-02T09:00:00Z,
AC2,T9,order,3,EUR,yesterday,
AC2,T10,order,3,EUR,2024-03-02T09:00:00Z,{not json
""")
    report = await import_transactions(sessions, path)

    assert [(r.line, r.column) for r in report.rejected] == [
        (4, "reference"), (5, "account_number"), (6, "kind"), (7, "amount"), (8, "amount"), (9, "currency"),
        (10, "occurred_at"), (11, "items")]
    assert report.rejected[1].reason == "no customer has account_number NOPE"
    async with sessions() as session:
        stored = (await session.scalars(select(Transaction).order_by(Transaction.reference))).all()
    assert [(t.reference, t.kind, t.amount, t.currency) for t in stored] == [
        ("T1", "order", Decimal("49.90"), "GBP"), ("T2", "refund", Decimal("10.00"), "GBP")]
    assert stored[0].items == [{"sku": "R1", "quantity": 1}]
    # stored in UTC: SQLite would otherwise keep 16:30 and lose the +02:00
    assert stored[0].occurred_at.replace(tzinfo=UTC) == datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    assert stored[1].occurred_at.replace(tzinfo=UTC) == datetime(2024, 3, 2, 9, 0, tzinfo=UTC)


def customers_file(tmp_path: Path, name: str, first: int, count: int) -> Path:
    rows = [f"P{n},Uma,Nair,,,,020 7946 {n:04d},uma.{n}@example.org,,,,,," for n in range(first, first + count)]
    return write(tmp_path, name, "\n".join([HEADER, *rows]) + "\n")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_duplicate_checks_send_the_same_statements_whatever_the_batch_holds(sessions, tmp_path):
    # One array parameter per check, not one parameter per value: PostgreSQL
    # (asyncpg) prepares each distinct statement text once per connection.
    sent: list[set[str]] = []

    def catch(_conn, _cursor, statement, _parameters, _context, _many):
        if statement.startswith("SELECT"):
            sent[-1].add(statement)

    engine = sessions.kw["bind"]
    event.listen(engine.sync_engine, "before_cursor_execute", catch)
    for first, count in ((0, 3), (3, 7)):
        sent.append(set())
        report = await import_customers(sessions, customers_file(tmp_path, f"{count}.csv", first, count), "GB")
        assert report.imported == count
    event.remove(engine.sync_engine, "before_cursor_execute", catch)

    assert len(sent[0]) == 3 and sent[0] == sent[1]  # account numbers; phones and e-mails; the new ids


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_import_leaves_postgresql_statistics_on_the_tables_it_filled(sessions, tmp_path):
    # Without them PostgreSQL plans the duplicate checks for empty tables, and
    # each batch's check then reads every phone already imported.
    await import_customers(sessions, customers_file(tmp_path, "customers.csv", 0, 5), "GB")
    await import_transactions(sessions, write(tmp_path, "transactions.csv", (
        "account_number,reference,kind,amount,currency,occurred_at,items\n"
        "P1,T1,order,49.90,GBP,2024-03-01T14:30:00Z,\n")))
    async with sessions() as session:
        analyzed = set(await session.scalars(text(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")))
    assert {"customers", "contact_points", "transactions"} <= analyzed


def run_cli(*args: str, database: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CC_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    return subprocess.run([sys.executable, "-m", "contactcentre", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_cli_import_writes_the_rejected_rows_beside_the_file_and_exits_1(tmp_path):
    path = write(tmp_path, "customers.csv", CUSTOMERS)
    result = run_cli("import", "customers", str(path), database=tmp_path / "cc.db")

    assert result.returncode == 1, result.stderr
    assert "6 of 17 customers imported, 11 rejected" in result.stdout
    with (tmp_path / "customers.rejected.csv").open(newline="", encoding="utf-8") as report:
        rows = list(csv.DictReader(report))
    assert [int(row["line"]) for row in rows] == [4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16]  # 17, 18 are not in this store
    assert rows[1]["reason"] == "'12' is not a possible phone number" and rows[1]["phone"] == "12"

    clean = write(tmp_path, "clean.csv", HEADER + "\nAC99,Uma,Nair,,,,020 7946 0099,,,,,,,\n")
    elsewhere = tmp_path / "out" / "report.csv"
    result = run_cli("import", "customers", str(clean), "--report", str(elsewhere), database=tmp_path / "cc.db")
    assert result.returncode == 0, result.stderr
    assert "1 of 1 customers imported, 0 rejected" in result.stdout and not elsewhere.exists()

    again = run_cli("import", "customers", str(path), "--report", str(elsewhere), database=tmp_path / "cc.db")
    assert again.returncode == 1 and "0 of 17 customers imported, 17 rejected" in again.stdout
    with elsewhere.open(newline="", encoding="utf-8") as report:
        assert len(list(csv.DictReader(report))) == 17


def test_cli_lists_duplicates_and_merges_them(tmp_path):
    database = tmp_path / "cc.db"
    people = write(tmp_path, "people.csv", HEADER + """
D1,Zoë,O'Brien,,,,020 7946 0101,,,1 Mill Lane,,Bristol,BS1 4DJ,GB
D2,ZOE,OBRIEN,,,,07700 900102,,,Flat 3,,Bristol,bs14dj,GB
""")
    assert run_cli("import", "customers", str(people), database=database).returncode == 0

    listed = run_cli("customers", "duplicates", database=database)
    assert listed.returncode == 0 and listed.stdout.splitlines() == ["1\t2\tsame name and postcode 'bs14dj'"]
    merged = run_cli("customers", "merge", "1", "2", "--reason", "ticket 42", database=database)
    assert merged.returncode == 0, merged.stderr
    assert run_cli("customers", "duplicates", database=database).stdout == ""
    refused = run_cli("customers", "merge", "1", "2", "--reason", "again", database=database)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "contactcentre: customers merge: no customer with id 2"


def test_cli_refuses_an_unreadable_file_with_one_line_and_exit_2(tmp_path):
    database = tmp_path / "cc.db"
    cases = {
        "latin1.csv": (HEADER + "\nAC1,Zoë,Doe,,,,020 7946 0001,,,,,,,\n", "latin-1",
                       "not UTF-8: byte 0xeb on line 2; save the file as UTF-8 and import again"),
        "short.csv": ("account_number,first_name,phone\nAC1,Jane,020 7946 0001\n", "utf-8",
                      ("missing header column(s): last_name, tier, segment, preferred_language, email, "
                       "customer_since")),
        "empty.csv": ("", "utf-8", "the file is empty: expected a header line naming the columns"),
    }
    for name, (text, encoding, message) in cases.items():
        path = write(tmp_path, name, text, encoding)
        result = run_cli("import", "customers", str(path), database=database)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [f"contactcentre: import customers: {path}: {message}"]
    missing = run_cli("import", "transactions", str(tmp_path / "nope.csv"), database=database)
    assert missing.returncode == 2 and "No such file or directory" in missing.stderr


async def add_history(sessions, customer_id: int, tag: str) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add_all([
            Address(customer_id=customer_id, line1=f"{tag} street", city="London", country="GB"),
            Transaction(customer_id=customer_id, kind="order", reference=f"ref-{tag}", amount=Decimal(5),
                        currency="GBP", occurred_at=now),
            Interaction(call_id=f"call-{tag}", customer_id=customer_id, arrived_at=now),
            Ticket(customer_id=customer_id, subject=f"ticket {tag}", created_at=now, updated_at=now),
            SurveyResponse(customer_id=customer_id, question="csat", score=5, answered_at=now),
            Consent(customer_id=customer_id, purpose="marketing", channel="email", granted=True, at=now,
                    source="import"),
            Callback(customer_id=customer_id, number="+442079460999", due_at=now, note=f"callback {tag}",
                     max_attempts=3, created_at=now),
        ])


async def owned(sessions, *customer_ids: int) -> dict[str, tuple[int, ...]]:
    """How many rows of each owned table belong to each of the customers."""
    async with sessions() as session:
        return {model.__tablename__: tuple([await session.scalar(select(func.count()).where(model.customer_id == i))
                                            for i in customer_ids])
                for model in (Address, Transaction, Interaction, Ticket, SurveyResponse, Consent, Callback)}


async def test_a_merge_keeps_every_record_of_both_customers_and_is_audited(sessions, tmp_path):
    await import_customers(sessions, write(tmp_path, "customers.csv", CUSTOMERS), "GB")
    async with sessions() as session:
        ids = dict((await session.execute(select(Customer.account_number, Customer.id))).all())
    keep, merged = ids["AC1"], ids["AC12"]
    for customer_id, tag in ((keep, "keep"), (merged, "merged")):
        await add_history(sessions, customer_id, tag)
    before, owned_before = await counts(sessions), await owned(sessions, keep, merged)

    await merge(sessions, keep, merged, None, "same person, two accounts")

    points = await contact_points_by_account(sessions)
    assert points["AC1"] == GOOD["AC1"] | {("phone", "+442079460012", False), ("email", "jonas@example.org", False)}
    assert await owned(sessions, keep, merged) == {model: (kept + moved, 0)
                                                   for model, (kept, moved) in owned_before.items()}
    async with sessions() as session:
        assert await session.get(Customer, merged) is None
        audit = (await session.scalars(select(AuditLog).where(AuditLog.action == "merge")
                                       .order_by(AuditLog.entity_id))).all()
    assert sorted(a.entity_id for a in audit) == sorted([str(keep), str(merged)])
    assert all("AC12" in a.reason and "same person, two accounts" in a.reason for a in audit)
    assert await counts(sessions) == (before[0] - 1, *before[1:])


async def test_duplicates_are_proposed_for_the_same_person_not_for_namesakes(sessions, tmp_path):
    people = HEADER + """
D1,Zoë,O'Brien,,,,020 7946 0101,zoe@example.org,,1 Mill Lane,,Bristol,BS1 4DJ,GB
D2,ZOE,OBRIEN,,,,07700 900102,,,Flat 3,,Bristol,bs14dj,GB
D3,John,Smith,,,,020 7946 0103,,,4 Elm Rd,,Leeds,LS1 4AP,GB
D4,John,Smith,,,,020 7946 0104,,,9 Oak Rd,,York,YO1 7HH,GB
D5,Jane,Doe,,,,020 7946 0105,jane.doe+shop@gmail.com,,,,,,
D6,Jane,Doe,,,,020 7946 0106,janedoe@work.example,,,,,,
D7,Mary,Doe,,,,020 7946 0107,jane.doe@other.example,,1 Mill Lane,,Bristol,BS1 4DJ,GB
"""
    await import_customers(sessions, write(tmp_path, "people.csv", people), "GB")
    async with sessions() as session:
        ids = dict((await session.execute(select(Customer.account_number, Customer.id))).all())

    pairs = await find_duplicates(sessions)

    assert [(p.keep_id, p.merge_id) for p in pairs] == [(ids["D1"], ids["D2"]), (ids["D5"], ids["D6"])]
    assert pairs[0].reason == "same name and postcode 'bs14dj'"
