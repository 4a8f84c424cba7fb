"""Column kinds: how the cells of one modality's columns become an input array, one file per kind.

* :mod:`~mmfuse.tabular.kinds.base`: the :class:`ColumnKind` contract and the ``COLUMN_KINDS`` registry;
* :mod:`~mmfuse.tabular.kinds.context`: :class:`Context`, the rows, path policy, cache and issue log of one call;
* ``text``, ``image``, ``audio``, ``sequence``, ``vector``, ``tabular``: the kinds (registered on first use).
"""

from mmfuse.tabular.kinds.base import COLUMN_KINDS, ColumnKind, column_kind
from mmfuse.tabular.kinds.context import Context

__all__ = ["COLUMN_KINDS", "ColumnKind", "Context", "column_kind"]
