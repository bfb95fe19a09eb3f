"""Past one process: durable read models in PostgreSQL tables, competing workers sharing them by partition
leases (or a leader), dead letters kept with their error, and blue/green rebuilds.

>>> from eventcore_lab.distributed import DurableReadModel, PartitionWorker, TableProjection, sql
"""

from ._apply import RetryPolicy
from ._duckdb import DuckDBReadModel
from ._errors import ReadModelError
from ._model import DurableReadModel, RequeueResult
from ._partitions import partition_of
from ._tables import Sql, TableProjection, sql
from ._worker import PartitionWorker

__all__ = [
    "DuckDBReadModel",
    "DurableReadModel",
    "PartitionWorker",
    "ReadModelError",
    "RequeueResult",
    "RetryPolicy",
    "Sql",
    "TableProjection",
    "partition_of",
    "sql",
]
