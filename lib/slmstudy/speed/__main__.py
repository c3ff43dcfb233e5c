"""`python -m slmstudy.speed --params …`: the speed section without a notebook."""

from .run import _main

_main()
