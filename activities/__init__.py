"""Activities: the I/O steps of the workflows."""
