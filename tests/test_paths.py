"""Where derived files live (paths.py): the cache folder follows SHARDKIT_CACHE, and a missing resource package is
a one-line error that says how to install it."""

import pytest

from shardkit.errors import ShardkitError
from shardkit.paths import cache_dir, package_dir


def test_cache_dir_follows_the_environment_and_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDKIT_CACHE", str(tmp_path / "c"))
    path = cache_dir("features", "yamnet")
    assert path == tmp_path / "c" / "features" / "yamnet" and path.is_dir()
    monkeypatch.delenv("SHARDKIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "shardkit"


def test_a_missing_resource_package_names_its_install_command():
    assert (package_dir("shardkit", "shardkit") / "names.py").is_file()
    with pytest.raises(ShardkitError, match=r"'no-such-pkg' is not installed: run `make install`") as e:
        package_dir("no_such_pkg_anywhere", "no-such-pkg")
    assert "\n" not in str(e.value)
