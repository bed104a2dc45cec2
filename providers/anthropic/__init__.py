"""Anthropic: the Message Batches API, the Messages API for the other tiers, and its realtime dialect."""
