"""The effect of a proposed taxonomy change on a stored survey, before anyone saves it.

A bounded sample of the survey's answers (``PREVIEW_SAMPLE`` texts, every k-th answered row) is classified
under the current taxonomy and under the proposed one (``pipelines.taxonomy_effect``). The proposed
taxonomy is never stored and its models are not kept: the bundle is the current one with the taxonomy
swapped (``ModelBundle.with_taxonomy``), dropped after the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.taxonomy import Taxonomy
from pipelines.taxonomy_effect import TaxonomyEffect, taxonomy_effect
from service.runtime import Runtime
from service.storage.tables import Job, Survey
from service.survey_queries import analysed_survey, analysed_surveys

__all__ = ["PREVIEW_SAMPLE", "TaxonomyPreview", "preview_change"]

PREVIEW_SAMPLE = 200  # texts: a few seconds of encoding on a cold cache, well under one on a warm one


@dataclass(frozen=True)
class TaxonomyPreview:
    survey: Survey
    job: Job
    answered: int  # answered rows of the survey, of which the sample was drawn
    effect: TaxonomyEffect


def preview_change(
    runtime: Runtime, proposed: Taxonomy, survey_id: str | None = None, *, sample: int = PREVIEW_SAMPLE
) -> TaxonomyPreview | None:
    """Mentions per theme before and after ``proposed`` on a sample of ``survey_id`` (default: the newest
    analysed survey); None when no survey has been analysed yet. An unknown or unfinished survey raises
    ``APIError`` (404 / 409) as it does everywhere else."""
    if survey_id:
        survey, job = analysed_survey(runtime, survey_id)
    else:
        newest = analysed_surveys(runtime, limit=20)
        if not newest:
            return None
        survey, job = newest[0]
    answered, rows = runtime.repo.answered_sample(survey.id, job.id, sample)
    texts = [t for r in rows for t in r.texts.values() if t.strip()][:sample]
    current = runtime.bundle()
    effect = taxonomy_effect(texts, current, current.with_taxonomy(proposed))
    return TaxonomyPreview(survey, job, answered, effect)
