"""Application services: the ``Backbone`` facade, the read side, replay, audit export, the sync protocol.

Rule: imports the core, ``common/`` and the settings only; adapters arrive as constructor
arguments (``bootstrap`` builds them).
"""
