"""A local emulator of the providers' batch APIs, faithful enough for the official SDKs."""
