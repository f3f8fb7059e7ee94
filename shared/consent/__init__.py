"""Consent: the suppression list, one-click unsubscribe, and the per-address gate every send passes."""
