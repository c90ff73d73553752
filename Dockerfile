FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STEWARD_VAR_DIR=/var/lib/steward \
    GUNICORN_ACCESS_LOG=-
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /var/lib/steward steward && mkdir -p /var/lib/steward \
    && chown steward /var/lib/steward \
    && STEWARD_ENV=production SECRET_KEY=collectstatic-only \
       ENCRYPTION_KEYS=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
       python manage.py collectstatic --noinput
USER steward
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "governance.wsgi:application"]
