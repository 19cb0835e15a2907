"""A user's run built from the layers below: environment, the live pipeline, recording,
monitoring, checking, notebook recording and virtual-time generation."""
