"""OpenAI-shaped providers declared in the providers file (``TIERLINE_PROVIDERS_FILE``): each lane, Azure's
among them, is an instance of this one plug-in: OpenAI's wire and adapter with the lane's address, key and quirks."""
