"""The theme taxonomy: read it (any key), change it (admin). Every change is a new version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from models.taxonomy import Taxonomy
from service.deps import RuntimeDep, require
from service.errors import AUTH_PROBLEMS, APIError, problem_responses
from service.runtime import Runtime
from service.schemas import MAX_VERSION, MergeRequest, TaxonomyOut, ThemeCreate, ThemeUpdate
from service.storage.taxonomies import VersionConflict, get_taxonomy, list_versions, save_taxonomy

router = APIRouter(prefix="/v1/taxonomy", tags=["taxonomy"], responses=AUTH_PROBLEMS)
_read = [Depends(require("classify"))]
_admin = [Depends(require("admin"))]
_EDIT_PROBLEMS = problem_responses(
    {
        409: "base_version is not the current version (or another edit was saved first)",
        413: "request body too large",
        422: "invalid edit: unknown or duplicate theme id, no change, invalid field",
    }
)


def _base(runtime: Runtime, base_version: int | None) -> Taxonomy:
    current = runtime.taxonomy()
    if base_version is not None and base_version != current.version:
        raise APIError(
            409,
            f"base_version: the taxonomy is at version {current.version}, not {base_version}; reload and retry",
            field="base_version",
            current_version=current.version,
        )
    return current


def _save(runtime: Runtime, new: Taxonomy, note: str) -> dict[str, Any]:
    try:
        return save_taxonomy(runtime.db, new, note=note, expected_version=new.version).to_dict()
    except VersionConflict as exc:
        raise APIError(409, str(exc)) from exc


@router.get("", response_model=TaxonomyOut, dependencies=_read)
def current(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.taxonomy().to_dict()


@router.get("/versions", dependencies=_read)
def versions(runtime: RuntimeDep) -> dict[str, Any]:
    runtime.taxonomy()  # seeds version 1 on first use
    return {"versions": list_versions(runtime.db)}


@router.get(
    "/versions/{version}",
    response_model=TaxonomyOut,
    dependencies=_read,
    responses=problem_responses({404: "no such version", 422: "not a version number"}),
)
def version(version: Annotated[int, Path(ge=1, le=MAX_VERSION)], runtime: RuntimeDep) -> dict[str, Any]:
    runtime.taxonomy()  # seeds the shipped taxonomy on first use
    found = get_taxonomy(runtime.db, version)
    if found is None:
        raise APIError(404, f"no taxonomy version {version}; GET /v1/taxonomy/versions lists them")
    return found.to_dict()


@router.post(
    "/themes", status_code=201, response_model=TaxonomyOut, dependencies=_admin, responses=_EDIT_PROBLEMS
)
def add_theme(body: ThemeCreate, runtime: RuntimeDep) -> dict[str, Any]:
    """Add a custom theme, scored at once by its example sentences."""
    new = _base(runtime, body.base_version).add_theme(
        body.id,
        body.name,
        examples=body.examples,
        description=body.description,
        name_en=body.name_en,
        polarity=body.polarity,
        sentiment=body.sentiment,
    )
    return _save(runtime, new, body.note or f"add {body.id}")


@router.patch("/themes/{theme_id}", response_model=TaxonomyOut, dependencies=_admin, responses=_EDIT_PROBLEMS)
def edit_theme(theme_id: str, body: ThemeUpdate, runtime: RuntimeDep) -> dict[str, Any]:
    """Rename a theme, change its description or add examples; its id stays."""
    new = _base(runtime, body.base_version).edit(
        theme_id, name=body.name, description=body.description, add_examples=body.add_examples
    )
    return _save(runtime, new, body.note or f"edit {theme_id}")


@router.post("/merge", response_model=TaxonomyOut, dependencies=_admin, responses=_EDIT_PROBLEMS)
def merge(body: MergeRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """Merge ``source`` into ``into``: the examples join, the source id becomes an alias of the target."""
    new = _base(runtime, body.base_version).merge(body.source, body.into)
    return _save(runtime, new, body.note or f"merge {body.source} into {body.into}")
