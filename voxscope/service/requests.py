"""The one place where a request's model, language, unsupported options and hot words are resolved
and checked. Every protocol calls these with the values it read off its wire; each refusal is a
ServiceError with one message, which the protocol renders in its own shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voxscope.config import Profile
from voxscope.errors import INVALID_PARAMETER, UNSUPPORTED, ServiceError

# The model -> profile rule lives below jobs/ (the file-task runner applies it too); the service
# layer's callers keep importing it from here.
from voxscope.profile_lookup import (  # noqa: F401
    API_NAMES,
    FILE_KINDS,
    INFERENCE_KINDS,
    REALTIME_KINDS,
    SYNC_KINDS,
    resolve_profile,
)
from voxscope.storage.vocabularies import VocabularyStore


def resolve_language(value: Any, languages: Sequence[str], model: str, *, field: str = "language",
                     param: str | None = None, also: Sequence[str] = ()) -> str | None:
    """A language code the model supports, lower-cased; None when the request names none.

    `also` lists accepted words the caller handles itself (e.g. "auto"), for the message only."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ServiceError(INVALID_PARAMETER, f"{field} must be a string", param=param or field)
    lang = value.strip().lower()
    if lang not in languages:
        raise ServiceError(INVALID_PARAMETER,
                           f"{field} {value!r} is not supported by {model}; supported: "
                           f"{', '.join((*also, *languages))}", param=param or field)
    return lang


def refuse_unsupported(params: Mapping[str, Any], resources: Any = None) -> None:
    """Options no local model can honour are refused, not silently dropped."""
    if _flag(params, "diarization_enabled"):
        raise ServiceError(UNSUPPORTED, "speaker diarization is not supported: no local "
                                        "diarization model is installed")
    if _flag(params, "audio_event_detection_enabled"):
        raise ServiceError(UNSUPPORTED, "audio event detection is not supported")
    if params.get("special_word_filter"):
        raise ServiceError(UNSUPPORTED, "sensitive word filtering is not supported")
    if resources:
        raise ServiceError(UNSUPPORTED, "asr_phrase resources (phrase_id) are not supported; "
                                        "use vocabulary_id hot words instead")


def _flag(params: Mapping[str, Any], key: str) -> bool:
    value = params.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ServiceError(INVALID_PARAMETER, f"parameter '{key}' must be a boolean", param=key)
    return value


def check_vocabulary_id(profile: Profile, vocabulary_id: Any) -> str | None:
    """A request's vocabulary_id, checked (None when it names none); does not read the store."""
    if vocabulary_id is None:
        return None
    if not isinstance(vocabulary_id, str) or not vocabulary_id:
        raise ServiceError(INVALID_PARAMETER, "vocabulary_id must be a non-empty string",
                           param="vocabulary_id")
    require_hotwords(profile)
    return vocabulary_id


def require_hotwords(profile: Profile) -> None:
    if not profile.hotwords:
        raise ServiceError(UNSUPPORTED, f"model {profile.name} does not support hot words")


def hotwords_for(vocabularies: VocabularyStore, owner: str, profile: Profile,
                 vocabulary_id: Any) -> list[dict[str, Any]]:
    """The word entries of the caller's vocabulary (blocking: reads the database); [] for none.

    An id of another key is as unknown as a wrong one (ServiceError from the store)."""
    vid = check_vocabulary_id(profile, vocabulary_id)
    if vid is None:
        return []
    return vocabularies.get(owner, vid).words

