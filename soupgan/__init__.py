"""The `soupgan` command line, on top of pipeline, beam_jobs, model and serving."""
__version__ = "0.3.0"
