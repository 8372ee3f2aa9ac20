"""Commands of the Makefile and the container (run as files: python scripts/run.py)."""
