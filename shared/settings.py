"""Every environment variable the functions read, validated once per instance.

The README's "Configuration" table documents each field; keep the two in step. Each
field is read from the environment variable of its name in upper case (AUTH_MODE for
`auth_mode`) and validated by pydantic. Plain pydantic, not pydantic-settings: reading
flat variables needs nothing more, and pydantic-settings (its dotenv, CLI and secrets
sources) added ~25 ms to every cold start (docs/architecture.md, "Cold start").
"""

from __future__ import annotations

import functools
import os
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

CommaList = tuple[str, ...]  # "a, b,c" in the environment


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    google_cloud_project: str = "demo-mission-control"
    region: str = "us-central1"
    build_version: str = "dev"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    firestore_deadline_seconds: float = Field(default=15.0, gt=0)

    allowed_origins: CommaList = ()
    max_body_bytes: int = Field(default=1_048_576, gt=0)

    auth_mode: Literal["firebase", "off"] = "firebase"
    auth_allowed_emails: CommaList = ()
    auth_allowed_domains: CommaList = ()
    auth_certs_url: str = (
        "https://www.googleapis.com/robot/v1/metadata/x509/"
        "securetoken@system.gserviceaccount.com"
    )

    # Set by the emulators' tooling; read to decide what AUTH_MODE and emulator tokens allow.
    firestore_emulator_host: str = ""
    firebase_auth_emulator_host: str = ""

    worker_url: str = "http://127.0.0.1:5000"
    # Where recipients reach the one-click unsubscribe URL (/u/{token}): the Hosting site.
    public_base_url: str = "http://127.0.0.1:5000"
    worker_time_budget_seconds: float = Field(default=50.0, gt=0)
    worker_lease_seconds: float = Field(default=120.0, gt=0)
    foreground_max_leads: int = Field(default=50, gt=0)
    # The jobs/worker chain (docs/jobs.md): the worker's deployed --timeout, leads in
    # flight per batch, and the sweeper's Cloud Scheduler OIDC token (docs/reliability.md).
    worker_timeout_seconds: float = Field(default=300.0, gt=0)
    worker_lead_concurrency: int = Field(default=32, ge=1, le=64)
    sweeper_audience: str = ""
    sweeper_service_account: str = ""
    sweeper_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"

    email_provider: Literal["mail_collection", "gmail"] = "mail_collection"
    gmail_sender: str = ""
    gmail_api_base_url: str = "https://gmail.googleapis.com"
    calendar_backend: Literal["firestore", "google"] = "firestore"
    google_calendar_id: str = "primary"

    telemetry_max_body_bytes: int = Field(default=65_536, gt=0)
    telemetry_rate_limit: int = Field(default=30, ge=0)
    telemetry_rate_window_seconds: int = Field(default=60, gt=0)
    telemetry_retention_days: int = Field(default=30, gt=0)
    trusted_proxy_hops: int = Field(default=2, ge=1)

    _split = field_validator(
        "allowed_origins", "auth_allowed_emails", "auth_allowed_domains", mode="before"
    )(_split_commas)

    @property
    def auth_enabled(self) -> bool:
        return self.auth_mode != "off"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        """The fields whose variables are set; the rest keep their defaults. A value
        pydantic refuses raises ValidationError naming the field, at the first request."""
        return cls.model_validate({name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ})


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env()
