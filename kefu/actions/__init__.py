"""Business tools (order lookup, cancellation, returns, product and knowledge search) and their runner."""
