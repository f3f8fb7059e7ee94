"""Error reports from the Operations page: bounded, scrubbed, grouped, stored, logged.

One hop from functions/telemetry/main.py: service.submit_report is the use case.
"""
