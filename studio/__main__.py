"""`python -m studio` (also under `torchrun -m studio train ...`)."""

import sys

from studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
