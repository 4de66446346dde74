"""Hot-word vocabularies: validation against DashScope's documented limits, and storage."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from voxscope.errors import ServiceError
from voxscope.storage.database import Database
from voxscope.storage.tables import Vocabulary, utcnow

# DashScope's custom hot-word rules: prefix of lowercase letters and digits (< 10 chars, per the
# SDK docstring), up to 500 words a list, weights 1..5, a word of at most 15 characters when it
# holds non-ASCII text or at most 7 space-separated words when it is all ASCII.
PREFIX = re.compile(r"^[a-z0-9]{1,9}$")
MAX_WORDS = 500
MAX_TEXT_CHARS = 15
MAX_ASCII_WORDS = 7
WEIGHTS = range(1, 6)
DEFAULT_WEIGHT = 4


class VocabularyError(ServiceError):
    """A vocabulary request refused (limits, unknown id)."""


NOT_FOUND = "InvalidParameter.VocabularyNotFound"
BAD_VOCABULARY = "InvalidParameter.Vocabulary"


@dataclass(frozen=True)
class VocabularyRecord:
    vocabulary_id: str
    prefix: str
    target_model: str
    words: list[dict[str, Any]]
    created: datetime
    modified: datetime


def validate_words(words: Any) -> list[dict[str, Any]]:
    """The entries as stored: `{text, weight, lang?}` with limits checked."""
    if not isinstance(words, list) or not words:
        raise VocabularyError(BAD_VOCABULARY, "vocabulary must be a non-empty list of "
                              "{text, weight, lang} entries")
    if len(words) > MAX_WORDS:
        raise VocabularyError(BAD_VOCABULARY, f"a vocabulary holds at most {MAX_WORDS} words, "
                              f"got {len(words)}")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(words):
        if not isinstance(entry, dict):
            raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}] must be an object")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}].text must be a non-empty string")
        text = " ".join(text.split())
        if text.isascii():
            if len(text.split()) > MAX_ASCII_WORDS:
                raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}].text '{text}' has more "
                                      f"than {MAX_ASCII_WORDS} words")
        elif len(text.replace(" ", "")) > MAX_TEXT_CHARS:
            raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}].text '{text}' is longer than "
                                  f"{MAX_TEXT_CHARS} characters")
        weight = entry.get("weight", DEFAULT_WEIGHT)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight != int(weight) \
                or int(weight) not in WEIGHTS:
            raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}].weight must be an integer "
                                  f"from {WEIGHTS.start} to {WEIGHTS.stop - 1}, got {weight!r}")
        lang = entry.get("lang")
        if lang is not None and not isinstance(lang, str):
            raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}].lang must be a string")
        if text.lower() in seen:
            raise VocabularyError(BAD_VOCABULARY, f"vocabulary[{i}].text '{text}' is listed twice")
        seen.add(text.lower())
        item: dict[str, Any] = {"text": text, "weight": int(weight)}
        if lang:
            item["lang"] = lang
        out.append(item)
    return out


class VocabularyStore:
    def __init__(self, db: Database, max_per_owner: int = 10) -> None:
        self.db = db
        self.max_per_owner = max_per_owner

    def create(self, owner: str, prefix: Any, target_model: str, words: Any) -> str:
        if not isinstance(prefix, str) or not PREFIX.match(prefix):
            raise VocabularyError("InvalidParameter.Prefix", "prefix must be 1-9 characters of "
                                  f"lowercase letters and digits, got {prefix!r}")
        entries = validate_words(words)
        vid = f"vocab-{prefix}-{uuid.uuid4().hex}"
        with self.db.session() as s:
            count = s.scalar(select(func.count()).select_from(Vocabulary)
                             .where(Vocabulary.owner == owner)) or 0
            if count >= self.max_per_owner:
                raise VocabularyError("InvalidParameter.VocabularyLimit",
                                      f"at most {self.max_per_owner} vocabularies per account; "
                                      "delete one first")
            s.add(Vocabulary(id=vid, prefix=prefix, target_model=target_model, words=entries,
                             owner=owner))
        return vid

    def get(self, owner: str, vocabulary_id: Any) -> VocabularyRecord:
        with self.db.session() as s:
            row = s.get(Vocabulary, vocabulary_id) if isinstance(vocabulary_id, str) else None
            if row is None or row.owner != owner:
                raise VocabularyError(NOT_FOUND, f"vocabulary not found: {vocabulary_id}", 404)
            return _record(row)

    def list(self, owner: str, prefix: str | None, page_index: int,
             page_size: int) -> list[VocabularyRecord]:
        q = select(Vocabulary).where(Vocabulary.owner == owner)
        if prefix:
            q = q.where(Vocabulary.prefix == prefix)
        q = q.order_by(Vocabulary.created.desc(), Vocabulary.id).offset(page_index * page_size) \
            .limit(page_size)
        with self.db.session() as s:
            return [_record(r) for r in s.scalars(q)]

    def update(self, owner: str, vocabulary_id: Any, words: Any) -> None:
        entries = validate_words(words)
        with self.db.session() as s:
            row = s.get(Vocabulary, vocabulary_id) if isinstance(vocabulary_id, str) else None
            if row is None or row.owner != owner:
                raise VocabularyError(NOT_FOUND, f"vocabulary not found: {vocabulary_id}", 404)
            row.words = entries
            row.modified = utcnow()

    def delete(self, owner: str, vocabulary_id: Any) -> None:
        with self.db.session() as s:
            row = s.get(Vocabulary, vocabulary_id) if isinstance(vocabulary_id, str) else None
            if row is None or row.owner != owner:
                raise VocabularyError(NOT_FOUND, f"vocabulary not found: {vocabulary_id}", 404)
            s.delete(row)


def _record(row: Vocabulary) -> VocabularyRecord:
    return VocabularyRecord(row.id, row.prefix, row.target_model, list(row.words), row.created,
                            row.modified)
