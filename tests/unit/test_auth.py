from contactcentre.crm.models import Role
from contactcentre.web.auth import SessionSigner


def test_a_signed_session_round_trips():
    signer = SessionSigner("s3cret", 60)
    identity = signer.verify(signer.issue(7, Role.AGENT, now=1000.0), now=1001.0)
    assert (identity.user_id, identity.role) == (7, Role.AGENT)


def test_tampered_foreign_and_expired_sessions_are_refused():
    signer = SessionSigner("s3cret", 60)
    token = signer.issue(7, Role.AGENT, now=1000.0)
    payload, signature = token.split(".")
    forged = SessionSigner("s3cret", 60).issue(7, Role.ADMIN, now=1000.0).split(".")[0] + "." + signature
    assert signer.verify(forged, now=1001.0) is None
    assert SessionSigner("other", 60).verify(token, now=1001.0) is None
    assert signer.verify(token, now=1061.0) is None
    assert signer.verify("garbage", now=1001.0) is None
    assert signer.verify(None) is None
