"""Pure logic, free of I/O: validation, batch windowing, retry policy, offsets.

Everything here takes time as an argument or an injected clock, so it is
tested without a broker and without sleeping.
"""
