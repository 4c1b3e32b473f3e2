"""``python -m infra`` is the ``streamrec`` command (used to spawn child processes)."""

from infra.cli import main

main()
