"""The outreach path: rendering templates for leads and handing messages to providers."""
