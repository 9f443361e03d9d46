"""The read-model store contract on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from read_model_store_contract import ReadModelStoreContract, StoreFactory
from support import drop_namespace

from syncbackbone.infra.postgres.database import Database
from syncbackbone.infra.postgres.read_models.store import PostgresReadModelStore
from syncbackbone.projections.projection import Projection


class TestPostgresReadModelStore(ReadModelStoreContract):
    @pytest.fixture
    def make_store(self, pg_dsn: str, namespace: str) -> Iterator[StoreFactory]:
        database = Database(pg_dsn, "read models")

        def make(projection: Projection) -> PostgresReadModelStore:
            return PostgresReadModelStore(database, namespace, projection)

        yield make
        database.close()
        drop_namespace(pg_dsn, namespace)

    def test_scratch_copies_are_dropped_by_discard(self, make_store: StoreFactory, pg_dsn: str) -> None:
        from syncbackbone.projections.builtin import DOCUMENTS

        copy = make_store(DOCUMENTS).scratch_copy("verify")
        copy.install(1)
        copy.discard()
        assert isinstance(copy, PostgresReadModelStore)
        with psycopg.connect(pg_dsn) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [copy.schema_name]).fetchone()
        assert found is None
