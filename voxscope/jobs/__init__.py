"""Async file-transcription tasks: the queue, task state, and the worker that runs them."""
