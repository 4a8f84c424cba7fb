"""The column-kind contract and its registry.

A column kind turns the cells of one modality's columns into an input array: it learns a state from the
training rows (:meth:`ColumnKind.fit`, a JSON-able dict saved in ``labels.json``), turns any rows into
``(x (N, ...), present (N,))`` with that state (:meth:`ColumnKind.transform`) and names the encoder that reads
``x`` (:meth:`ColumnKind.encoder`). A new kind is one file in this package and one decorator::

    @COLUMN_KINDS.register("point_cloud")
    class PointCloudKind(ColumnKind): ...
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mmfuse.errors import ConfigError
from mmfuse.registry import Registry
from mmfuse.tabular.kinds.context import Context

DEFAULT_OUT = 64  # the encoder's output size unless the schema gives out_dim
POSITIVE_INT = ("out_dim", "size", "channels", "max_len", "n_mels", "sample_rate", "max_length", "max_categories")


class ColumnKind:
    """One kind of modality column (text, image, ...): its options, fitted state, arrays and encoder.

    The state of every kind holds ``kind``, ``columns``, ``out_dim`` and ``encoder`` (``""`` for a kind with no
    encoder choice), then what :meth:`fit` learned. Kinds hold no data: one instance serves every modality.
    """

    name: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset({"out_dim"})  # schema options a modality of this kind accepts
    encoders: ClassVar[tuple[str, ...]] = ()  # values of the 'encoder' option, the default first
    sizes: ClassVar[tuple[str, ...]] = ()  # state fields that must be positive whole numbers (when present)

    # ------------------------------------------------------------------ options
    def check_options(self, modality: str, options: dict[str, Any]) -> None:
        """Refuse (:class:`~mmfuse.errors.ConfigError`) an option this kind does not take or a bad value."""
        bad = sorted(set(options) - self.options)
        if bad:
            raise ConfigError(
                f"Schema options {bad} do not apply to {self.name} modality {modality!r}; valid options: "
                f"{sorted(self.options)}."
            )
        for key, value in options.items():
            if key in POSITIVE_INT and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(
                    f"Schema option {key!r} of modality {modality!r} is {value!r}; give a positive whole number."
                )
            self.check_value(modality, key, value)
        encoder = self.encoder_name(options)
        if self.encoders and encoder not in self.encoders:
            raise ConfigError(
                f"Encoder {encoder!r} is not available for {self.name} modality {modality!r}; choose "
                f"one of {list(self.encoders)}."
            )

    def check_value(self, modality: str, key: str, value: Any) -> None:
        """Refuse a value of option ``key`` that this kind cannot use (after the generic checks)."""

    def encoder_name(self, options: dict[str, Any]) -> str:
        """The 'encoder' option, or this kind's default (``""`` when it has no choice)."""
        return str(options.get("encoder", self.encoders[0] if self.encoders else ""))

    # ------------------------------------------------------------------ state
    def new_state(self, columns: list[str], options: dict[str, Any], **fitted: Any) -> dict[str, Any]:
        """The keys every state has, then ``fitted``."""
        return {
            "kind": self.name,
            "columns": list(columns),
            "out_dim": int(options.get("out_dim", DEFAULT_OUT)),
            "encoder": self.encoder_name(options),
            **fitted,
        }

    def fit(self, ctx: Context, columns: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """The state learned from the rows of ``ctx`` (options already checked by :meth:`check_options`)."""
        return self.new_state(columns, options)

    def check_state(self, modality: str, state: dict[str, Any]) -> None:
        """Refuse a saved state (``labels.json``) that this kind cannot use; raises ``ValueError``."""
        sizes = [k for k in ("out_dim", *self.sizes) if k in state]
        if not isinstance(state.get("out_dim"), int) or any(
            not isinstance(state[k], int) or isinstance(state[k], bool) or state[k] <= 0 for k in sizes
        ):
            raise ValueError(f"modality {modality!r} has a size that is not a positive whole number")

    # ------------------------------------------------------------------ arrays and encoder
    def transform(self, ctx: Context, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(x (N, ...), present (N,) bool)`` of the rows of ``ctx``; an absent row has zeros and an issue."""
        raise NotImplementedError

    def encoder(self, state: dict[str, Any]) -> dict[str, Any]:
        """The ModelConfig ``encoders`` entry reading :meth:`transform`'s ``x``; by default an ``mlp`` on
        ``(N, dim)`` vectors."""
        return {"name": "mlp", "in_dim": state["dim"], "out_dim": state["out_dim"], "hidden": [128]}


COLUMN_KINDS: Registry[ColumnKind] = Registry("column kind", "mmfuse.tabular.kinds")


def column_kind(name: str) -> ColumnKind:
    """The registered kind ``name`` (unknown names list the valid ones)."""
    return COLUMN_KINDS.build(name)
