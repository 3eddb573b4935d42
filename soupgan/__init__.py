"""The `soupgan` command line, on top of pipeline, beam_jobs, model and serving."""
__version__ = "0.5.0"  # the one place it is set (setup.py reads it)
