"""Prometheus metrics of one app (own registry, so several apps in one test process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "koe_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "koe_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.texts = Counter(
            "koe_classified_texts", "texts classified by /v1/classify", registry=self.registry
        )
        self.uploads = Counter(
            "koe_uploads", "survey uploads accepted", ["duplicate"], registry=self.registry
        )
        self.jobs = Gauge("koe_jobs", "jobs by state", ["state"], registry=self.registry)
