"""The naming rules, each written once: collection and document ids, namespaces, projections.

A *name* (a collection, a document id, a client) appears in aggregate ids, topics' keys
and read-model rows; a *namespace* prefixes Kafka topics and is a PostgreSQL schema, so it
must be safe in both; a *projection* name becomes part of a schema name.
"""

from __future__ import annotations

import re

from .errors import ConfigurationError, InvalidInput

NAME = r"^[A-Za-z0-9_.:@-]{1,200}$"
"""A collection, document id or client name: 1-200 letters, digits or any of ``_.:@-``."""
NAMESPACE = r"^[a-z][a-z0-9_]{0,40}$"
"""A namespace: a lower-case letter, then up to 40 lower-case letters, digits or ``_``."""
TENANT = r"^[A-Za-z0-9_.:@-]{1,64}$"
"""A tenant: 1-64 letters, digits or any of ``_.:@-``."""
TENANT_SEPARATOR = "~"
"""Joins a tenant and a collection into the collection the log and the read models hold."""
QUALIFIED_NAME = r"^(?:[A-Za-z0-9_.:@-]{1,64}~)?[A-Za-z0-9_.:@-]{1,200}$"
"""A collection as commands carry it: ``tenant~collection`` for a tenant's data, or a bare name."""
PROJECTION = r"^[a-z][a-z0-9_]{0,30}$"
"""A projection name: a lower-case letter, then up to 30 lower-case letters, digits or ``_``."""

_NAME, _NAMESPACE, _PROJECTION = re.compile(NAME), re.compile(NAMESPACE), re.compile(PROJECTION)
_QUALIFIED = re.compile(QUALIFIED_NAME)


def checked_name(value: str, what: str) -> str:
    """``value`` if it is a valid collection, id or client name, else InvalidInput naming ``what``."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(f"{what} {str(value)[:40]!r} must be 1-200 letters, digits or any of '_.:@-'")
    return value


def checked_collection(value: str) -> str:
    """``value`` if it names a collection as the log holds it (``tenant~notes`` or ``notes``), else InvalidInput."""
    if not isinstance(value, str) or not _QUALIFIED.match(value):
        raise InvalidInput(f"collection {str(value)[:40]!r} must be 1-200 letters, digits or any of '_.:@-'")
    return value


def checked_namespace(namespace: str) -> str:
    """``namespace`` if it is safe as a topic prefix and a schema name, else ConfigurationError."""
    if not _NAMESPACE.match(namespace):
        raise ConfigurationError(
            f"namespace {namespace[:60]!r} must be a lower-case letter, then up to 40 lower-case letters, digits or '_'"
        )
    return namespace


def checked_projection(name: str) -> str:
    """``name`` if it can name a projection, else ConfigurationError."""
    if not _PROJECTION.match(name):
        raise ConfigurationError(f"projection name {name[:60]!r} must be lower-case letters, digits and '_'")
    return name


def qualified(tenant: str, collection: str) -> str:
    """The collection ``collection`` of ``tenant`` as the log holds it (unchanged without a tenant)."""
    return f"{tenant}{TENANT_SEPARATOR}{collection}" if tenant else collection


def unqualified(collection: str) -> str:
    """The collection as its tenant names it (``tenant~notes`` -> ``notes``)."""
    return collection.rpartition(TENANT_SEPARATOR)[2]
