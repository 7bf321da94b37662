"""`python -m arcvdm`: the `arcvdm` command where no entry point is installed (a carried checkout on a GPU machine)."""

from arcvdm.cli import main

main()
