"""Running chunks on workers: a Ray-free scheduler (``scheduler``) and the Ray actor pool that
drives it (``ray_pool``). Only ``ray_pool`` and ``ray_runtime`` import ray."""
