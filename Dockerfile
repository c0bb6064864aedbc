# The emulator as a container image: `docker compose up` (docker-compose.yml) runs it.
#
# BASE_IMAGE: any image with Python >= 3.11 and pip (default python:3.11-slim, from Docker Hub).
# Where no registry can be reached, docker/local_images.py --emulator-base builds one from this
# machine's Python with the emulator's dependencies already in it; then pass
# PIP_ARGS="--no-deps --no-build-isolation --no-index" so nothing is downloaded (README, "Docker Compose").
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG PIP_ARGS=""
COPY pyproject.toml README.md /opt/emulator/
COPY emulator /opt/emulator/emulator
COPY runtimes /opt/emulator/runtimes
COPY sources /opt/emulator/sources
RUN python3 -m pip install --no-cache-dir ${PIP_ARGS} /opt/emulator
# The template folder is mounted here (docker-compose.yml).
WORKDIR /app
# 3001: the Lambda and AWS endpoint; 3000: the API Gateway front door.
EXPOSE 3001 3000
ENTRYPOINT ["emulator"]
CMD ["up", "--host", "0.0.0.0", "--allow-remote", "--port", "3001", "--template", "/app/template.yaml"]
