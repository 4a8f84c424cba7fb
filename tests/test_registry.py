from __future__ import annotations

import pytest

from mmfuse.errors import ConfigError, MmfuseError, UnknownNameError
from mmfuse.registry import ENCODERS, FUSIONS, HEADS, OBJECTIVES, Registry


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(UnknownNameError) as err:
        ENCODERS.get("cnnn")
    msg = str(err.value)
    assert "Unknown encoder 'cnnn'" in msg and "Did you mean 'cnn'" in msg
    for name in ENCODERS.list():
        assert name in msg
    assert isinstance(err.value, MmfuseError)


def test_register_twice_is_refused():
    reg: Registry = Registry("thing")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(ValueError):

        @reg.register("a")
        class B:
            pass

    assert reg.list() == ["a"] and "a" in reg and reg.get("a") is A


def test_bad_keyword_names_the_method():
    with pytest.raises(ConfigError, match="Cannot build encoder 'mlp'"):
        ENCODERS.build("mlp", in_dim=3, not_an_option=1)


def test_families_are_populated():
    assert {"mlp", "cnn", "logmel_cnn", "gru", "transformer"} <= set(ENCODERS.list())
    assert {"linear", "mlp"} <= set(HEADS.list())
    assert {"cross_entropy", "mse", "auxiliary"} <= set(OBJECTIVES.list())
    assert len(FUSIONS.list()) >= 1
