"""The public namespace is exactly what the README documents."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

import pg_backups_async as pba

README = Path(__file__).parent.parent / "README.md"


def test_all_matches_the_readme() -> None:
    section = README.read_text().split("## Public API", 1)[1].split("\n## ", 1)[0]
    # Each bullet names one or more exports before its colon; continuation lines are indented.
    bullets = re.findall(r"^- (.*?(?:\n  .*?)*):", section, flags=re.MULTILINE)
    documented = {name for bullet in bullets for name in re.findall(r"`(\w+)`", bullet)}
    assert documented == set(pba.__all__)
    assert all(hasattr(pba, name) for name in pba.__all__)


def test_models_are_frozen_slotted_attrs() -> None:
    for cls in (pba.Backup, pba.BackupsPage, pba.RetryPolicy):
        assert attrs.has(cls)
        assert "__slots__" in vars(cls)
    backup = pba.Backup(id="x")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        backup.size = 1  # type: ignore[misc]
    assert [a.name for a in attrs.fields(pba.Backup)] == [
        "id",
        "folder_id",
        "created_at",
        "source_cluster_id",
        "started_at",
        "size",
        "type",
        "method",
        "journal_size",
        "status",
        "retention_policy_id",
        "retention_policy_name",
        "retain_until",
    ]


def test_error_hierarchy() -> None:
    for cls in (
        pba.InvalidArgumentError,
        pba.UnauthenticatedError,
        pba.PermissionDeniedError,
        pba.NotFoundError,
        pba.ResourceExhaustedError,
        pba.UnavailableError,
        pba.InternalError,
        pba.ResponseFormatError,
        pba.NetworkError,
    ):
        assert issubclass(cls, pba.ApiError)


def test_enums_have_unspecified_and_unknown() -> None:
    for cls in (pba.BackupType, pba.BackupMethod, pba.BackupStatus):
        assert {"UNSPECIFIED", "UNKNOWN"} <= set(cls.__members__)


def test_py_typed_is_shipped() -> None:
    assert (Path(pba.__file__).parent / "py.typed").exists()
