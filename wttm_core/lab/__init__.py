"""The lab: what runs the notebooks as a whole (the runner, progress reports) rather than one experiment."""
