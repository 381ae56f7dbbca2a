"""divtrace: where does output diversity collapse in post-training?"""

__version__ = "0.1.0"
