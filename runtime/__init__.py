"""spikec.runtime: compiled artifacts (save / load), Session (prefill, decode,
generate) and training."""
from .artifact import Artifact, Entry
from .artifact_io import FORMAT_VERSION, load_artifact, save_artifact
from .errors import ArtifactError, CheckpointError, RuntimeInputError
from .session import Session
from .state import DecodeState, StateSlot


def load(path: str, target: str | None = None) -> Session:
    """Load a saved artifact (verifying versions and hashes) as a Session."""
    return Session(load_artifact(path, target))


__all__ = ["Artifact", "Entry", "Session", "DecodeState", "StateSlot", "load", "load_artifact", "save_artifact",
           "FORMAT_VERSION", "ArtifactError", "RuntimeInputError", "CheckpointError"]
