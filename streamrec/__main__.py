"""``python -m streamrec`` is the ``streamrec`` command (also how child processes are spawned)."""

from streamrec.infra.cli import main

main()
