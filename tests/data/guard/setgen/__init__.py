"""Builders of kefu's labelled guard sets (PII, prompt injection, moderation); run ``build_sets.py``."""
