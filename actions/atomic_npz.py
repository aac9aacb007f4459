"""Write a NumPy .npz file so that no reader ever sees half of it: the arrays go to a temporary file in the same
directory, which is then renamed over the final name (a rename within one file system is atomic). Shared by the
knowledge base's on-disk caches (actions/embedding_cache.py, actions/kb_fit_cache.py), which several processes read
while one of them writes."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Store `arrays` at `path` (plain arrays: read them with allow_pickle=False). Raises OSError, leaving no
    temporary file behind and any earlier file at `path` as it was."""
    temporary: Optional[Path] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem[:16], suffix=".tmp", delete=False) as out:
            temporary = Path(out.name)
            np.savez(out, **arrays)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
