"""Deliverability: sending windows in the lead's zone, per-sender caps and pacing,
provider quotas, and the waiting state they put a job in (docs/deliverability.md)."""
