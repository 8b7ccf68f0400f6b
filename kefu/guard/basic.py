"""The default guard: PII spans and a redacted copy; moderation and injection checks plug in here later."""

from __future__ import annotations

from kefu.core.types import GuardVerdict
from kefu.guard.pii import find_pii, redact


class PiiGuard:
    """Implements ``Guard``: reports PII so logs and analytics can keep it out."""

    def inbound(self, text: str) -> GuardVerdict:
        spans = find_pii(text)
        return GuardVerdict(pii=spans, redacted_text=redact(text, spans) if spans else text)

    def outbound(self, text: str) -> GuardVerdict:
        return self.inbound(text)
