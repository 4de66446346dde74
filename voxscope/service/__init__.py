"""What the protocol adapters share beneath their wire formats."""
