"""Prefect tasks: thin wrappers around the stages in ``vidcolor.stages``, one module per stage,
and the Ray actor that holds the model."""
