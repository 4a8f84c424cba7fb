"""The dataset registry: names, options, errors, and the data folder fallback."""

from __future__ import annotations

import pytest

from mmfuse.data.registry import list_datasets, load_dataset
from mmfuse.errors import ConfigError, DataError, UnknownNameError


def test_list_datasets():
    assert list_datasets() == ["avmnist", "handwritten", "mosi"]


def test_load_by_name_with_options(data_dir):
    splits = load_dataset("mosi", data_dir, protocol="original", modalities=("audio",))
    assert splits.spec.name == "mosi" and splits.spec.num_outputs == 2 and list(splits.spec.encoders) == ["audio"]


def test_env_var_is_the_fallback_data_dir(data_dir, monkeypatch):
    monkeypatch.setenv("MMFUSE_DATA_DIR", str(data_dir))
    assert len(load_dataset("handwritten").test) == 400


def test_unknown_name_and_option():
    with pytest.raises(UnknownNameError, match=r"Unknown dataset 'avmnsit'. Did you mean 'avmnist'\?"):
        load_dataset("avmnsit")
    with pytest.raises(ConfigError, match="n_trian"):
        load_dataset("avmnist", n_trian=10)


def test_missing_data_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("handwritten", tmp_path, download=False)
    assert str(tmp_path / "handwritten") in str(err.value) and "MMFUSE_DATA_DIR" in str(err.value)
