"""`python -m fat`: the `fat` command."""

from fat.cli import main

main()
