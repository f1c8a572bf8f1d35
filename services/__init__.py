"""council: a council of LLMs answers, reviews each other anonymously, and a chairman synthesises.

This package is the ``services/`` folder of the repository; ``council.schemas`` is ``schemas/``.
"""

__version__ = "0.1.0"
