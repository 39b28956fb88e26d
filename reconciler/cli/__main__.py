"""`python -m reconciler.cli`: the same as the `reconciler` command."""

from reconciler.cli import main

main()
