# Archway image (Debian bookworm). Build: docker build -t archway:latest .
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config libasio-dev node-llhttp libnghttp2-dev \
      libssl-dev libre2-dev libyaml-cpp-dev nlohmann-json3-dev libcurl4-openssl-dev \
      libspdlog-dev libfmt-dev libcli11-dev ca-certificates
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DARCHWAY_TESTS=OFF \
    && cmake --build build --target archway

FROM debian:bookworm-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libnghttp2-14 libssl3 libre2-9 libyaml-cpp0.7 libcurl4 libspdlog1.10 libfmt9 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/archway /usr/local/bin/archway
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/archway"]
CMD ["run", "--kubernetes", "--admin-address", "0.0.0.0:9901"]
