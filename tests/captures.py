"""Where the real Asterisk captures live (../shared/ami-captures beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CAPTURES = Path(os.environ.get("CC_CAPTURES", Path(__file__).resolve().parents[2] / "shared" / "ami-captures"))


def capture(name: str) -> bytes:
    path = CAPTURES / name
    if not path.exists():
        pytest.fail(f"capture {path} missing: the tests need ../shared/ami-captures beside the repo "
                    f"(or CC_CAPTURES pointing at it)")
    return path.read_bytes()


AMI_CAPTURES = sorted(p.name for p in CAPTURES.glob("*.ami")) if CAPTURES.exists() else []


def agi_sessions() -> list[list[str]]:
    """Each FastAGI session of agi-ivr.agi.txt as its lines: `> ` from Asterisk, `< ` from the server."""
    sessions: list[list[str]] = []
    for line in capture("agi-ivr.agi.txt").decode().splitlines():
        if line.startswith("# ---- FastAGI session"):
            sessions.append([])
        elif line.startswith(("> ", "< ")) or line.rstrip() == ">":
            sessions[-1].append(line)
    return sessions
