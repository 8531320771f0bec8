"""The SET Retail 10 knowledge base: per-tariff site editions and the gate that serves them."""
