from __future__ import annotations

from tether.cli import main

raise SystemExit(main())
