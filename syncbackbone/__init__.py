"""syncbackbone: an event-sourced CQRS sync backbone.

The distribution maps the top-level folders of the repository onto this package:
``domain/`` is ``syncbackbone.domain``, ``commands/`` is ``syncbackbone.commands``,
``projections/`` is ``syncbackbone.projections``, ``infra/`` is ``syncbackbone.infra``
and ``schemas/`` is ``syncbackbone.schemas`` (see ``[tool.setuptools.package-dir]``).
"""

__version__ = "0.1.0"
