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


SMALL = {"avmnist": {"n_train": 64, "n_val": 32, "n_test": 32}, "handwritten": {}, "mosi": {}}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_dataset_keeps_the_batch_contract(name, data_dir):
    """Contract over the dataset registry: every split yields batches whose inputs, masks and targets match the
    spec, and a model built from the spec's encoders takes them."""
    import torch

    from mmfuse.config import ModelConfig
    from mmfuse.contract import validate_batch
    from mmfuse.data.registry import DATASETS, load_dataset
    from mmfuse.models.builder import build_model
    from mmfuse.tasks import task_kind

    assert name in DATASETS.list()
    splits = load_dataset(name, data_dir=data_dir, **SMALL[name])
    spec = splits.spec
    kind = task_kind(spec.task)
    model = build_model(ModelConfig(encoders=spec.encoders, num_outputs=spec.num_outputs, task=spec.task)).eval()
    for part in ("train", "val", "test"):
        ds = getattr(splits, part)
        assert len(ds) > 0, (name, part)
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=16)))
        assert sorted(batch["inputs"]) == sorted(spec.encoders) == sorted(batch["masks"]), (name, part)
        validate_batch(batch["inputs"], batch["masks"])
        if kind.single_label:
            assert batch["target"].dim() == 1 and int(batch["target"].max()) < spec.num_outputs
        with torch.no_grad():
            out = model(batch["inputs"], batch["masks"])
        assert (
            out["prediction"].shape == (len(batch["target"]), spec.num_outputs)
            and torch.isfinite(out["prediction"]).all()
        )
