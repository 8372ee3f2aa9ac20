"""The RabbitMQ consumer: ``python -m consumer``."""
