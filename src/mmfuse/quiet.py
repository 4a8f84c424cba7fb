"""Lightning's informational chatter kept out of mmfuse's output (its errors and real warnings still show)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

_NOTES = (  # Lightning notes that describe a choice mmfuse made on purpose
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    ".*validation_step.*no `val_dataloader`.*",
    ".*number of training batches.*smaller than the logging interval.*",
    ".*predict.*distributed.*",
)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within the block, Lightning's loggers show warnings and errors only and its notes in :data:`_NOTES` are
    silenced (devices found, sampler and worker hints)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        for note in _NOTES:
            warnings.filterwarnings("ignore", message=note)
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)
