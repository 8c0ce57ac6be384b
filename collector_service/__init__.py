"""collector_service: capture Hyperliquid traders' orders and positions into MongoDB."""
