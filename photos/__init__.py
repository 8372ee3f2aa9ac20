"""The photo processor's shared core: used by both the web app and the consumer."""
