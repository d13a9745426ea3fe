"""POST /v1/classify: sentiment and themes for support tools, one call per ticket or a batch of them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends

from pipelines.classify import classify_texts
from service.deps import MetricsDep, RuntimeDep, require
from service.errors import AUTH_PROBLEMS, APIError, problem_responses
from service.logs import text_for_log
from service.schemas import ClassifyRequest, ClassifyResponse

router = APIRouter(prefix="/v1", tags=["classify"], responses=AUTH_PROBLEMS)
log = logging.getLogger("koe.api")


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    dependencies=[Depends(require("classify"))],
    responses=problem_responses(
        {
            413: "request body too large",
            422: "invalid texts, or an unknown taxonomy_version",
            503: "the models cannot be loaded",
        }
    ),
)
def classify(body: ClassifyRequest, runtime: RuntimeDep, metrics: MetricsDep) -> dict[str, Any]:
    """Each text's sentiment (with probabilities), themes (with per-theme sentiment and evidence),
    sentences and ``needs_review``; the same shape as ``koe classify``. The texts are encoded together."""
    limits = runtime.settings
    if len(body.texts) > limits.max_texts_per_call:
        raise APIError(
            422,
            f"texts: {len(body.texts)} texts, at most {limits.max_texts_per_call} per call; split the batch",
            field="texts",
        )
    for i, text in enumerate(body.texts):
        if len(text) > limits.max_text_chars:
            raise APIError(
                422,
                f"texts[{i}]: {len(text):,} characters, at most {limits.max_text_chars:,} per text",
                field=f"texts[{i}]",
            )
    if log.isEnabledFor(logging.DEBUG):  # comment text reaches the log only at DEBUG
        log.debug("classify", extra={"texts": [text_for_log(t) for t in body.texts]})
    bundle = runtime.bundle(body.taxonomy_version)
    results = classify_texts(body.texts, bundle)
    metrics.texts.inc(len(body.texts))
    out = []
    for i, (text, res) in enumerate(zip(body.texts, results, strict=True)):
        d = res.to_dict()
        out.append({"id": i, "text": text, "normalized_text": d.pop("text"), **d})
    info = bundle.info()
    return {
        "results": out,
        "model": {k: info[k] for k in ("encoder", "sentiment", "themes", "taxonomy")},
    }
