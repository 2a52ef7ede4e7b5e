"""What the store refuses, and why: each refusal carries the status and error id the API answers with."""

from __future__ import annotations


class StoreError(Exception):
    status = 400
    error_id = "bad-request"

    def __init__(self, message: str, error_id: str | None = None):
        super().__init__(message)
        if error_id is not None:
            self.error_id = error_id


class NotFound(StoreError, LookupError):
    status = 404

    def __init__(self, kind: str, ref: int | str):
        super().__init__(f"no {kind.replace('_', ' ')} {ref}", f"no-such-{kind.replace('_', '-')}")


class CustomerNotFound(NotFound):
    def __init__(self, customer: int | str):
        super().__init__("customer", customer)


class Refused(StoreError):
    """The user's role may do this in general, but not to this record (another agent's ticket)."""

    status = 403


class Conflict(StoreError):
    """The record's state does not allow it: erased, closed, already taken."""

    status = 409
