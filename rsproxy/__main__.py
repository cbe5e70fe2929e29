"""``python -m rsproxy`` runs the command line."""

from rsproxy.cli import main

main()
