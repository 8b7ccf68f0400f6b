"""Channel adapters: each turns its protocol into ``InboundMessage`` and a turn's answer back."""
