"""Persistence: the event-sourced conversation store, migrations and conversation locks."""
