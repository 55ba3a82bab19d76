"""Prefect tasks: each a thin call into the library (``vidcolor.run.Run``, ``vidcolor.training``);
no decisions of their own."""
