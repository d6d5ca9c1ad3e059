"""Organisation posture: one read of the Claude organisation's Admin resources, then checks."""
