import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from webapp.env import env_bool, env_int, env_list, env_str, env_url


def test_malformed_boolean_fails_loudly():
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), ("off", False), ("", False)])
def test_booleans_accept_common_spellings(raw, expected):
    assert env_bool("X", not expected, environ={"X": raw}) is expected


def test_malformed_integer_and_bound_fail_loudly():
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("N", 1, environ={"N": "ten"})
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 1, minimum=1, environ={"N": "0"})
    assert env_int("N", 7, environ={}) == 7


def test_required_string_without_default_fails():
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is required"):
        env_str("SECRET_KEY", None, environ={})


def test_url_scheme_is_checked():
    with pytest.raises(ImproperlyConfigured, match="must start with one of"):
        env_url("DATABASE_URL", "sqlite:///x", schemes=("postgres",), environ={"DATABASE_URL": "mysql://x"})
    assert env_url("U", "redis://h:6379/0", schemes=("redis",), environ={}) == "redis://h:6379/0"


def test_lists_split_on_commas_and_drop_blanks():
    assert env_list("H", [], environ={"H": "a.example, b.example,,"}) == ["a.example", "b.example"]


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", "SECRET_KEY": "x", **env}
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60)


def test_cache_url_chooses_a_shared_redis_cache_or_refuses_an_unknown_scheme():
    shared = _settings_in_subprocess({"CACHE_URL": "redis://127.0.0.1:6379/2"}, "settings.CACHES['default']['BACKEND']")
    assert shared.stdout.strip() == "django.core.cache.backends.redis.RedisCache", shared.stderr
    local = _settings_in_subprocess({"CACHE_URL": "locmem://"}, "settings.CACHES['default']['BACKEND']")
    assert local.stdout.strip() == "django.core.cache.backends.locmem.LocMemCache", local.stderr
    bad = _settings_in_subprocess({"CACHE_URL": "memcached://x"}, "1")
    assert bad.returncode != 0 and "CACHE_URL must start with one of" in bad.stderr
