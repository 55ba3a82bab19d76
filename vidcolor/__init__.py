"""vidcolor: colorize black-and-white film.

The library under the CLI, the Prefect tasks and the Ray actors. Stages are plain functions in
``vidcolor.stages``; ``vidcolor.colorizer.Colorizer`` is the one interface every model plugs into.
"""

__version__ = "0.1.0"
