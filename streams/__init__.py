"""The tierline service: Faust app, topics, settings, Kafka plumbing and the CLI."""
