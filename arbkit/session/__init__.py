"""Sessions: recording (and, next, monitoring and checking) built from the venue layers."""
