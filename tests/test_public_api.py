"""The public namespace is exactly what the README documents."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

import pg_backups_async as pba

DOCS = Path(__file__).parent.parent / "docs"


def test_every_public_name_is_in_the_api_reference() -> None:
    reference = (DOCS / "api.md").read_text()
    documented = set(
        re.findall(
            r"^\.\. auto(?:class|function|exception|data):: pg_backups_async\.(\w+)$",
            reference,
            re.M,
        )
    )
    assert documented == set(pba.__all__)
    assert all(hasattr(pba, name) for name in pba.__all__)


def test_every_public_member_has_a_docstring() -> None:
    import inspect

    missing = []
    for name in pba.__all__:
        obj = getattr(pba, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for attribute, value in vars(obj).items():
            if attribute.startswith("_"):
                continue
            function = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if (callable(function) or isinstance(function, property)) and not function.__doc__:
                missing.append(f"{name}.{attribute}")
    assert missing == []


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
