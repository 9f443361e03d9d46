"""Errors of the read side, added under the one tree of ``syncbackbone.domain.errors``::

SyncBackboneError
├── InvalidInput
│   ├── UnknownProjection     a projection name that is not registered
│   ├── NotFound              a document, aggregate or dead letter that does not exist
│   └── ChangeRejected        the read-model store refused a change's data (e.g. a NUL in JSON)
├── LogError
│   └── CheckpointMoved       a partition's checkpoint is not where this worker left it
│                             (another worker took the partition, or a rebuild was swapped in)
└── ResultTimeout
    └── ProjectionLagging     a projection did not pass the asked positions in time
"""

from __future__ import annotations

from ..domain.errors import InvalidInput, LogError, ResultTimeout


class UnknownProjection(InvalidInput):
    """A projection name that is not registered."""


class NotFound(InvalidInput):
    """A document, aggregate or dead letter that does not exist."""


class ChangeRejected(InvalidInput):
    """The read-model store refused the data of a change."""


class CheckpointMoved(LogError):
    """A partition's checkpoint moved under this worker; reload it and carry on."""


class ProjectionLagging(ResultTimeout):
    """A projection did not reach the asked log positions before the timeout."""
