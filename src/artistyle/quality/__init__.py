"""Quality measures that no loss optimises."""
