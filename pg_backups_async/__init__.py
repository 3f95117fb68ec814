"""Asyncio client for the Yandex Cloud Managed PostgreSQL backups API.

async with BackupsClient(credentials=IamToken(token)) as client:
    async for backup in client.list_backups(cluster_id):
        ...
"""

from importlib.metadata import PackageNotFoundError, version

__version__: str
try:
    __version__ = version("pg-backups-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0"

from .auth import (
    Credentials,
    IamToken,
    KeyFilePermissionsWarning,
    MetadataCredentials,
    OAuthToken,
    ServiceAccountKey,
    credentials_from_env,
)
from .bulk import Discovery
from .client import BackupsClient
from .errors import (
    ApiError,
    AuthError,
    InternalError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ResponseFormatError,
    UnauthenticatedError,
    UnavailableError,
)
from .fanout import FanOut
from .models import (
    Backup,
    BackupMethod,
    BackupsPage,
    BackupStatus,
    BackupType,
    Cloud,
    CloudsPage,
    Cluster,
    ClusterBackups,
    ClusterEnvironment,
    ClusterHealth,
    ClusterInventory,
    ClustersPage,
    ClusterStatus,
    Folder,
    FoldersPage,
    FolderStatus,
    Inventory,
    InventoryState,
    Page,
)
from .observe import Attempt, AttemptHook
from .paging import PageIterator, PageStream, ResumePoint
from .ratelimit import RateLimiter
from .retry import RetryBudget, RetryPolicy
from .serialize import from_dict, to_dict, to_json
from .transport import AiohttpTransport, HttpRequest, HttpResponse, MockTransport, Transport

__all__ = [
    "AiohttpTransport",
    "ApiError",
    "Attempt",
    "AttemptHook",
    "AuthError",
    "Backup",
    "BackupMethod",
    "BackupStatus",
    "BackupType",
    "BackupsClient",
    "BackupsPage",
    "Cloud",
    "CloudsPage",
    "Cluster",
    "ClusterBackups",
    "ClusterEnvironment",
    "ClusterHealth",
    "ClusterInventory",
    "ClusterStatus",
    "ClustersPage",
    "Credentials",
    "Discovery",
    "FanOut",
    "Folder",
    "FolderStatus",
    "FoldersPage",
    "HttpRequest",
    "HttpResponse",
    "IamToken",
    "InternalError",
    "InvalidArgumentError",
    "Inventory",
    "InventoryState",
    "KeyFilePermissionsWarning",
    "MetadataCredentials",
    "MockTransport",
    "NetworkError",
    "NotFoundError",
    "OAuthToken",
    "Page",
    "PageIterator",
    "PageStream",
    "PermissionDeniedError",
    "RateLimiter",
    "ResourceExhaustedError",
    "ResponseFormatError",
    "ResumePoint",
    "RetryBudget",
    "RetryPolicy",
    "ServiceAccountKey",
    "Transport",
    "UnauthenticatedError",
    "UnavailableError",
    "credentials_from_env",
    "from_dict",
    "to_dict",
    "to_json",
]
