import stat

import pytest

from f5rl.utils.atomic import atomic_copy, atomic_path, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "manifest.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        assert tmp.parent == tmp_path and tmp.name.startswith(".manifest.jsonl.")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.jsonl"]


def test_a_finished_write_replaces_the_file_with_shareable_permissions(tmp_path):
    target = tmp_path / "sub" / "card.md"  # missing folders are created
    assert atomic_write_text(target, "new ✓") == target
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with atomic_path(tmp_path / "ckpt.pt", mode=0o600) as tmp:
        tmp.write_bytes(b"weights")
    assert stat.S_IMODE((tmp_path / "ckpt.pt").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "sub"]


def test_atomic_copy(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(bytes(range(256)) * 100)
    dst = atomic_copy(src, tmp_path / "b.bin")
    assert dst.read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing.bin", tmp_path / "c.bin")
    assert not (tmp_path / "c.bin").exists() and len(list(tmp_path.iterdir())) == 2
