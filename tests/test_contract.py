from __future__ import annotations

import pytest
import torch

from mmfuse.contract import masked_softmax, modality_order, validate_batch
from mmfuse.errors import DataError


def test_masked_softmax_renormalises_over_present_and_never_nans():
    scores = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    w = masked_softmax(scores, mask)
    e1, e3 = torch.exp(torch.tensor(1.0)), torch.exp(torch.tensor(3.0))
    assert torch.allclose(w[0], torch.stack([e1 / (e1 + e3), torch.tensor(0.0), e3 / (e1 + e3)]))
    assert torch.equal(w[1], torch.zeros(3))


def test_validate_batch_fills_and_checks_masks():
    inputs = {"b": torch.zeros(4, 2), "a": torch.zeros(4, 3)}
    masks = validate_batch(inputs, {"a": torch.tensor([1, 0, 1, 1])})
    assert masks["a"].dtype == torch.bool and masks["a"].tolist() == [True, False, True, True]
    assert masks["b"].all()
    assert modality_order(inputs) == ["a", "b"]
    with pytest.raises(DataError, match="shape"):
        validate_batch(inputs, {"a": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(DataError, match="different batch sizes"):
        validate_batch({"a": torch.zeros(4, 1), "b": torch.zeros(5, 1)}, None)
    with pytest.raises(DataError, match="no input"):
        validate_batch(inputs, {"c": torch.ones(4, dtype=torch.bool)})
