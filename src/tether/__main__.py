"""`python -m tether` and the `tether` script: a broken install is one line and exit 70."""

from __future__ import annotations

import sys

BROKEN_INSTALL = 70  # ExitCode.BUG, spelled out: tether.exitcodes may be what failed to import


def run() -> None:
    try:
        from tether.cli import main  # noqa: PLC0415 (an import error must be caught)
    except ImportError as exc:
        print(
            f"tether: broken install ({type(exc).__name__}: {exc}); "
            "reinstall it (pip install --force-reinstall tether)",
            file=sys.stderr,
        )
        raise SystemExit(BROKEN_INSTALL) from None
    raise SystemExit(main())


if __name__ == "__main__":
    run()
