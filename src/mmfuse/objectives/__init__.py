"""Objectives. Each is a pure function (formula + reference in its docstring) and a thin
:class:`~mmfuse.objectives.base.Objective` module registered in :data:`mmfuse.registry.OBJECTIVES`.
Training sums the named terms with weights from the config and logs each term."""
