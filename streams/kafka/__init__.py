"""Kafka plumbing: bulk publishing, reading topics whole, creating topics."""
