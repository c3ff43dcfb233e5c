"""slmstudy: a reproducible study of small open LLMs across inference engines."""

__version__ = "0.1.0"
