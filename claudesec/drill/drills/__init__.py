"""The drills, one module per defence family."""
