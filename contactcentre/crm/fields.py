"""Checks of single values that both the CSV import and the JSON API apply, with one wording.

A refused value raises FieldError naming the field (a CSV column or a JSON
key) and the problem; the importer reports it with the line, the API answers
400 with it.
"""

from __future__ import annotations

import re

from contactcentre.crm.phones import InvalidPhoneNumber, to_e164

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
SEPARATORS = re.compile(r"[\s().-]+")  # what people put between digits; phonenumbers ignores them
MAX_EMAIL = 254  # RFC 5321's limit on a forward path, and the column's width


class FieldError(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field
        self.problem = problem


def email_address(value: str, field: str = "email") -> str:
    """The address in lower case, the one form the store keeps and looks up."""
    address = value.lower()
    if not EMAIL.match(address):
        raise FieldError(field, f"{value!r} is not an e-mail address")
    if len(address) > MAX_EMAIL:
        raise FieldError(field, f"{field} is longer than {MAX_EMAIL} characters")
    return address


def language_tag(value: str, field: str = "preferred_language") -> str:
    if not LANGUAGE.match(value):
        raise FieldError(field, f"{value!r} is not a language tag such as en or pt-BR")
    return value


def phone_number(value: str, default_region: str, field: str = "phone") -> str:
    """The number in E.164; national forms are read in `default_region`."""
    try:
        # phonenumbers reads "02079460001" twice as fast as "020 7946 0001": over a
        # 100,000-row file that is seconds.
        return to_e164(SEPARATORS.sub("", value), default_region)
    except InvalidPhoneNumber:
        pass  # parse it again as written, so the error names the number the way the user wrote it
    try:
        return to_e164(value, default_region)
    except InvalidPhoneNumber as exc:
        raise FieldError(field, str(exc)) from None
