"""The dataset source of a run's artifact, whatever artifact store the MLflow server hands out.

MLflow describes ``file:``, ``s3:``, ``gs:``... URIs (sources derived from its artifact repositories)
and ``http(s):`` URLs, but not the URIs of a server that proxies artifacts (``mlflow-artifacts:``),
nor ``runs:``/``models:``/``dbfs:``: it refuses them. A verified-label snapshot must keep its lineage
record wherever the run's artifacts live, so a URI MLflow cannot describe gets
:class:`ArtifactUriSource`: the URI recorded as text, loadable through MLflow's artifact API.
"""

from __future__ import annotations

from typing import Any

from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import get_registered_sources

__all__ = ["ArtifactUriSource", "artifact_source"]


class ArtifactUriSource(DatasetSource):
    """An artifact by its URI, as MLflow's artifact API resolves it (``{"uri": ...}``, type ``artifact_uri``).

    Only :func:`artifact_source` makes one; it is not registered with MLflow, so it never takes a URI
    from MLflow's own sources in someone else's ``mlflow.data.from_pandas``.
    """

    def __init__(self, uri: str) -> None:
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    @staticmethod
    def _get_source_type() -> str:
        return "artifact_uri"

    def load(self, dst_path: str | None = None) -> str:
        """Download the artifact (through the tracking server for ``mlflow-artifacts:``); its local path."""
        from mlflow.artifacts import download_artifacts

        return download_artifacts(artifact_uri=self._uri, dst_path=dst_path)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and ":" in raw_source

    @classmethod
    def _resolve(cls, raw_source: Any) -> ArtifactUriSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> ArtifactUriSource:
        return cls(source_dict["uri"])


def artifact_source(uri: str) -> DatasetSource:
    """MLflow's own source for ``uri`` when it has one, else an :class:`ArtifactUriSource`.

    MLflow registers the local artifact source class twice, so its resolver warns that a ``file://``
    URI "can be interpreted in multiple ways"; taking the newest match is what it does anyway.
    """
    for source_class in reversed(get_registered_sources()):
        if source_class._can_resolve(uri):
            return source_class._resolve(uri)
    return ArtifactUriSource(uri)
