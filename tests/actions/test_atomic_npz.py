"""The knowledge base's caches write through actions/atomic_npz.py: a reader sees the old file or the new one,
never half of one, and a failed write leaves nothing behind."""
from pathlib import Path

import numpy as np
import pytest

from actions import atomic_npz
from actions.atomic_npz import write_npz


def test_written_arrays_read_back_without_pickle(tmp_path: Path):
    path = tmp_path / "nested" / "rows.npz"
    write_npz(path, keys=np.array(["a", "b"]), vectors=np.eye(2, dtype=np.float32))
    with np.load(path, allow_pickle=False) as data:
        assert list(data["keys"]) == ["a", "b"]
        assert data["vectors"].dtype == np.float32 and data["vectors"][1, 1] == 1.0
    assert [p.name for p in path.parent.iterdir()] == ["rows.npz"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch):
    path = tmp_path / "rows.npz"
    write_npz(path, values=np.arange(3))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_npz.np, "savez", disk_full)
    with pytest.raises(OSError):
        write_npz(path, values=np.arange(5))
    with np.load(path, allow_pickle=False) as data:
        assert list(data["values"]) == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["rows.npz"]
