"""Shared fixtures: the external vectors, read in place from ../shared/vectors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = REPO_ROOT.parent / "shared" / "vectors"


def vector_path(*parts: str) -> Path:
    """The path of one vector file; skips (fails under CI=true) when it is missing."""
    path = VECTORS.joinpath(*parts)
    if not path.exists():
        reason = f"external vectors not found at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def load_vectors(*parts: str) -> Any:
    return json.loads(vector_path(*parts).read_text(encoding="utf-8"))


def load_module_vectors(*parts: str) -> Any:
    """:func:`load_vectors` at collection time: a missing file skips the whole module
    (and still fails under CI=true)."""
    try:
        return load_vectors(*parts)
    except pytest.skip.Exception as exc:
        pytest.skip(str(exc), allow_module_level=True)


def is_jwe_group(group: Any) -> bool:
    """Whether a Wycheproof JOSE test group holds JWE tests (rather than JWS ones)."""
    return any("jwe" in test for test in group["tests"])
