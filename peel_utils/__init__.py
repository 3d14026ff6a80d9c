"""peel_utils: the small helper package behind the PEEL workbook.

Each module holds one concept (``data``, ``models``, ``prune``, ``train``, ``checkpoints``,
``report``, ``runtime``); the notebooks teach the ideas and call these for the plumbing.
"""

__version__ = "0.1.0"
