"""Safety: PII detection and redaction, moderation and prompt-injection checks."""
