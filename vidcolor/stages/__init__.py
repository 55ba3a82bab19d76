"""Pipeline stages as plain library code: split, colorize, stitch, finalize (concat + mux).
Prefect tasks in ``tasks/`` wrap them; nothing here imports Prefect."""
