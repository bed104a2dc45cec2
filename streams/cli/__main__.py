"""``python -m streams.cli``: how tierline starts its own processes."""

from streams.cli.main import main

main()
