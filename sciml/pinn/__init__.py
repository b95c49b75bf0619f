"""pinn."""
