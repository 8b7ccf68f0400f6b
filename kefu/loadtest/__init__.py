"""Load testing: an open-loop generator of multi-turn zh/en conversations, its statistics and HTML report."""
