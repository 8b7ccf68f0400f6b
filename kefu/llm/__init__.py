"""The LLM gateway: OpenAI-compatible backends, model profiles, registry, routing, resilience, local engine."""
