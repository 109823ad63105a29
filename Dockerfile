FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY newsletter newsletter
COPY subscribers subscribers
COPY tasks tasks
COPY templates templates
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu "torch==2.13.0" \
 && pip install --no-cache-dir ".[semantic]"
ENV NEWSLETTER_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["newsletter", "serve", "--host", "0.0.0.0"]
