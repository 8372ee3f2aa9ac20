"""Create the database named by PG_CONNECTION_URI if it does not exist."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from photos.config import Settings
from photos.db import sqlalchemy_url


def main() -> None:
    url = make_url(sqlalchemy_url(Settings.from_env().pg_uri))
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            print(f"created database {name}")
    admin.dispose()


if __name__ == "__main__":
    main()
