"""`python -m prompttest`."""

from .cli import main

main()
