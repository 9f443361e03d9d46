"""The ``syncbackbone`` command and its subcommands.

Rule: imports ``bootstrap``, ``app/``, the settings and ``runtime/``; never an adapter;
``tools/`` only lazily, inside the subcommand that needs it.
"""
