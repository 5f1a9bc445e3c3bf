import numpy as np
import pytest

from shardkit.audio.cache import FeatureCache, clip_key
from shardkit.errors import ShardkitError


class Counter:
    def __init__(self, value):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return self.value


def test_compute_runs_once_across_gets(tmp_path):
    cache = FeatureCache(tmp_path, "enc-v1")
    compute = Counter(np.arange(12, dtype=np.float32).reshape(3, 4))
    first = cache.get_or_compute("abcdef", compute)
    second = cache.get_or_compute("abcdef", compute)
    assert compute.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32 and second.shape == (3, 4)
    assert (tmp_path / "enc-v1" / "ab" / "abcdef.npy").is_file()
    again = FeatureCache(tmp_path, "enc-v1")  # a new process sees the stored file
    again.get_or_compute("abcdef", compute)
    assert compute.calls == 1 and again.hits == 1


def test_encoders_do_not_share_entries(tmp_path):
    FeatureCache(tmp_path, "enc-a").get_or_compute("abc", Counter(np.zeros(2)))
    other = FeatureCache(tmp_path, "enc-b")
    other.get_or_compute("abc", Counter(np.ones(2)))
    assert other.misses == 1


def test_clip_key_follows_content_and_span(tmp_path):
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    a.write_bytes(b"RIFF one")
    b.write_bytes(b"RIFF one")
    c.write_bytes(b"RIFF two")
    assert clip_key(a, 0.0, None) == clip_key(b, 0.0, None)  # same bytes elsewhere: same features
    assert clip_key(a, 0.0, None) != clip_key(c, 0.0, None)
    assert clip_key(a, 0.0, None) != clip_key(a, 1.0, None) != clip_key(a, 1.0, 2.0)
    assert clip_key(a, 0, None) == clip_key(a, 0.0, None)
    key = clip_key(a, 0.0, None)
    a.write_bytes(b"RIFF edited")
    assert clip_key(a, 0.0, None) != key
    assert len(key) == 64 and int(key, 16) >= 0


def test_clip_key_missing_file(tmp_path):
    with pytest.raises(ShardkitError, match="nope.wav: file not found"):
        clip_key(tmp_path / "nope.wav", 0.0, None)


def test_writes_leave_no_temp_files(tmp_path):
    cache = FeatureCache(tmp_path, "enc")
    for i in range(5):
        cache.get_or_compute(f"{i:02d}key", Counter(np.full((32, 8), i, np.float32)))
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"{i:02d}key.npy" for i in range(5)]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path, "enc")

    def half_save(f, value, allow_pickle):
        f.write(b"\x93NUMPY half")
        raise KeyboardInterrupt  # a process killed mid-write

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute("abc", Counter(np.zeros(4)))
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_failed_compute_stores_nothing(tmp_path):
    cache = FeatureCache(tmp_path, "enc")

    def boom():
        raise ValueError("encoder failed")

    with pytest.raises(ValueError):
        cache.get_or_compute("abc", boom)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_damaged_entry_is_recomputed(tmp_path):
    cache = FeatureCache(tmp_path, "enc")
    cache.get_or_compute("abc", Counter(np.zeros(4)))
    (tmp_path / "enc" / "ab" / "abc.npy").write_bytes(b"junk")
    compute = Counter(np.ones(4))
    np.testing.assert_array_equal(cache.get_or_compute("abc", compute), np.ones(4))
    assert compute.calls == 1
    np.testing.assert_array_equal(cache.get_or_compute("abc", compute), np.ones(4))
    assert compute.calls == 1


@pytest.mark.parametrize("key", ["", "ab", "../etc", "a/b/c", ".hidden"])
def test_unsafe_keys_are_refused(tmp_path, key):
    with pytest.raises(ShardkitError, match="feature cache: key"):
        FeatureCache(tmp_path, "enc").get_or_compute(key, Counter(np.zeros(1)))


def test_unsafe_encoder_id_is_refused(tmp_path):
    with pytest.raises(ShardkitError, match="encoder id"):
        FeatureCache(tmp_path, "../up")


def test_default_root_is_under_the_shardkit_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDKIT_CACHE", str(tmp_path))
    cache = FeatureCache.default("enc")
    assert cache.root == tmp_path / "features"
