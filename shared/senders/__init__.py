"""Senders: the mailboxes runs send from, their caps and pacing (docs/deliverability.md)."""
