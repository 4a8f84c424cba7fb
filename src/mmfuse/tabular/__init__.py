"""From a table of files, text, numbers and categories to multimodal tensors.

* :mod:`~mmfuse.tabular.schema`: which column is which modality (inferred, overridable by a YAML/JSON schema);
* :mod:`~mmfuse.tabular.readers`: per-cell readers that report unusable cells instead of raising;
* :mod:`~mmfuse.tabular.kinds`: the column kinds (text, image, audio, sequence, vector, tabular), one file each;
* :mod:`~mmfuse.tabular.cache`: the on-disk embedding cache of frozen encoders;
* :mod:`~mmfuse.tabular.dataset`: :class:`TablePipeline`, fitted on training rows, table -> dataset + issue log.
"""

from mmfuse.tabular.cache import EmbeddingCache
from mmfuse.tabular.dataset import TableData, TablePipeline
from mmfuse.tabular.readers import Issue, read_table
from mmfuse.tabular.schema import Schema, resolve_schema

__all__ = ["EmbeddingCache", "Issue", "Schema", "TableData", "TablePipeline", "read_table", "resolve_schema"]
