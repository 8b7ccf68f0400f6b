"""Access control and rate limits: API keys, agent and admin accounts, session tokens, token buckets and the
LLM token quota per conversation. Nothing here knows HTTP; ``kefu.api.deps`` turns it into 401/403/429."""
