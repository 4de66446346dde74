"""The pure parts of streaming recognition: endpointing, preview agreement, result building.

The async driver that owns the audio and talks to the scheduler is `voxscope.engine.recognizer`;
nothing in this package imports it, the scheduler or the model. `trace` is the driver's debug
trace of each sentence's steps (off by default).
"""
