"""Grading, pure NumPy: problems generated from seeds, submissions graded and diagnosed."""
