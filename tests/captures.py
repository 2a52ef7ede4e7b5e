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
