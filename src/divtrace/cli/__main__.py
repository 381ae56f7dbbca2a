"""``python -m divtrace.cli``."""

import sys

from divtrace.cli import main

if __name__ == "__main__":  # vLLM spawns workers: keep the entry point guarded
    sys.exit(main())
