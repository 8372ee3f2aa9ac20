# The app image: the web app (gunicorn on $PORT) and one consumer in one
# container, supervised by scripts/run.py as `make run` does without Docker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    PORT=3000 \
    THUMBS_DIR=/waldo-app-thumbs

# The uid that writes the thumbs: match the owner of the bind-mounted ./thumbs
# (docker compose build --build-arg APP_UID=$(id -u)) if it is not 1000.
ARG APP_UID=1000
RUN useradd --create-home --uid "${APP_UID}" app \
    && mkdir -p "${THUMBS_DIR}" \
    && chown app:app "${THUMBS_DIR}"

WORKDIR /app
# Dependencies first: their layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The code stays owned by root: the service can read it, not change it.
# .dockerignore keeps tests, the virtualenv, caches and thumbs out.
COPY . .

USER app
EXPOSE 3000
# Create the database if the server has none yet, migrate, then run the web
# app and the consumer; exec makes run.py the process that gets SIGTERM.
CMD ["sh", "-c", "python scripts/ensure_db.py && python -m photos.schema upgrade && exec python scripts/run.py"]
