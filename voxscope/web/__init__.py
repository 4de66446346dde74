"""The web console: static pages served by `voxscope serve` at `/`."""
