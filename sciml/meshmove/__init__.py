"""meshmove."""
