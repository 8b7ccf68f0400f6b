"""Kafka routing (issue 6): channel gateways publish customers' messages to ``kefu.inbound`` (key = the
conversation id), ``kefu worker`` runs the pipeline in a consumer group and publishes the answers to
``kefu.outbound``; a gateway's relay consumes those and delivers them. Values that cannot be processed go
to ``kefu.deadletter``. See docs/kafka.md.

- ``codec``: the JSON values and their strict validation (pure);
- ``offsets``: which offset of a partition may be committed (pure);
- ``lanes``: one conversation's messages in order, different conversations at the same time;
- ``connect``: bootstrap parsing, reachability, topics;
- ``worker``: the consumer-group worker; ``gateway``: the producer side and the outbound relay.
"""
