"""A second stack for the hardening tests: AUTH_MODE=firebase with real signed tokens."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import pytest

from tests.conftest import LOG_DIR, TEST_PROJECT
from tests.tokens import TokenIssuer
from tools import localstack
from tools.faultproxy import HttpFaultProxy

OPERATOR = "ops@example.com"
SECURED_LOG_DIR = LOG_DIR / "secured"


@dataclasses.dataclass
class SecuredStack:
    stack: localstack.Stack
    issuer: TokenIssuer
    handoffs: HttpFaultProxy  # WORKER_URL: sees every hand-off, so tests know the tokens in flight

    @property
    def url(self) -> str:
        return self.stack.url

    def headers(self, email: str = OPERATOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.token(email)}"}


@pytest.fixture(scope="session")
def secured_stack(emulator) -> Iterator[SecuredStack]:
    issuer = TokenIssuer(TEST_PROJECT)
    SECURED_LOG_DIR.mkdir(parents=True, exist_ok=True)
    for old in SECURED_LOG_DIR.glob("*.log"):
        old.unlink()
    env = {
        "AUTH_MODE": "firebase",
        "AUTH_CERTS_URL": issuer.certs_url,
        "AUTH_ALLOWED_EMAILS": OPERATOR,
        "TELEMETRY_RATE_LIMIT": "0",
        "WORKER_TIME_BUDGET_SECONDS": "2",
        "WORKER_LEASE_SECONDS": "15",
    }
    port = localstack.free_port()
    handoffs = HttpFaultProxy(f"http://127.0.0.1:{port}")
    env["WORKER_URL"] = handoffs.url
    with localstack.running_stack(emulator=emulator, port=port, env=env, log_dir=SECURED_LOG_DIR) as stack:
        yield SecuredStack(stack, issuer, handoffs)
    handoffs.close()
    issuer.close()
