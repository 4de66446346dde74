"""Durable state: the database (vocabularies, file tasks and their progress) and stored files."""
