"""The ``aodncore`` console script: hand ``ingest`` to the warm runner when one can take it, else run the CLI.

Kept to the standard library until the command is known: the warm path must not pay for importing Typer, Rich or
Prefect (see :mod:`aodncore.prefect.localserver.warmclient`).
"""

from __future__ import annotations

import gc
import sys

__all__ = ["main"]


def main() -> int:
    """Entry point of the ``aodncore`` command; returns the exit code."""
    argv = sys.argv[1:]
    if argv[:1] == ["ingest"]:
        from aodncore.prefect.localserver.warmclient import delegate

        code = delegate(argv)
        if code is not None:
            return code
        # the imports ahead allocate a lot and free little: no cyclic GC until the run starts (end_of_startup)
        gc.disable()
        if not any(arg in ("--help", "-h", "--dry-run") for arg in argv):  # these need no Prefect
            from aodncore.prefect.runtime import start_prefect_api_early

            start_prefect_api_early()  # the server starts before Typer, Rich and the options are even loaded
    from aodncore.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
