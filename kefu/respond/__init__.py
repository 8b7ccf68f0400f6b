"""Responders: the template / extractive responder (no LLM); the grounded LLM responder comes with the gateway."""
