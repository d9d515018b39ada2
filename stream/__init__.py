"""The stream-processing core (pure, no I/O) and the application around it."""
