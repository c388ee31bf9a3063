"""``python -m lstm_embed``: the same program as the ``lstm-embed`` command (see docs/cli.md)."""
import sys

from lstm_embed.cli import main

if __name__ == "__main__":
    sys.exit(main())
