"""Outreach templates: the rules for creating, editing and deleting them."""
