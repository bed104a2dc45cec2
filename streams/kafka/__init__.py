"""Kafka plumbing: the consumer agents' intake, bulk publishing, reading topics whole, creating topics."""
