"""OpenAI: the Files and Batch APIs, the synchronous APIs for the other tiers (flex among them), and its
realtime dialect. Declared lanes and Azure speak the same wire (``providers.lanes``)."""
