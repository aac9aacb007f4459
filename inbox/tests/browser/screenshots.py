"""Where the browser tests save their screenshots.

With UPDATE_SCREENSHOTS=1 they refresh the pictures the READMEs show (docs/screenshots/); otherwise they
go to a scratch folder, so running the tests leaves the work tree clean."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from inbox.settings import REPO_ROOT

if os.environ.get("UPDATE_SCREENSHOTS") == "1":
    SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
else:
    SCREENSHOTS = Path(tempfile.gettempdir()) / "kesar-lane-screenshots"
    SCREENSHOTS.mkdir(exist_ok=True)
