"""Alembic environment: the URL is the one the service uses (PG_CONNECTION_URI),
unless the caller set ``sqlalchemy.url`` on the config (the tests do)."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from photos.config import Settings
from photos.db import sqlalchemy_url
from photos.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

url = sqlalchemy_url(config.get_main_option("sqlalchemy.url") or Settings.from_env().pg_uri)

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
