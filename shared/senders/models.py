"""Request and response shapes of /api/senders."""

from __future__ import annotations

from pydantic import Field, StrictInt

from shared.models import ApiModel

# Gmail allows a Workspace user about 2,000 messages a day (docs/deliverability.md);
# a higher cap could only be a typo, and the reservation keeps one entry per send.
MAX_PER_DAY = 10000
MAX_GAP_SECONDS = 24 * 3600
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class SenderPut(ApiModel):
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    max_per_day: StrictInt = Field(ge=1, le=MAX_PER_DAY)
    max_per_hour: StrictInt | None = Field(default=None, ge=1, le=MAX_PER_DAY)
    min_gap_seconds: StrictInt = Field(ge=0, le=MAX_GAP_SECONDS)
    jitter_seconds: StrictInt = Field(default=0, ge=0, le=MAX_GAP_SECONDS)


class Sender(ApiModel):
    id: str
    email: str
    max_per_day: int
    max_per_hour: int | None = None
    min_gap_seconds: int
    jitter_seconds: int = 0
    sent_last_24h: int = Field(alias="sentLast24h")
    next_send_at: str | None = None
    paused_until: str | None = None
    pause_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class SenderList(ApiModel):
    senders: list[Sender]
