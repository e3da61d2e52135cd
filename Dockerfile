# liandong: one image, three roles (serve | ingest | project).
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p liandong && cp target/release/liandong /liandong

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/liandong liandong \
    && mkdir -p /var/lib/liandong && chown liandong /var/lib/liandong
COPY --from=build /liandong /usr/local/bin/liandong
USER liandong
WORKDIR /var/lib/liandong
ENV LIANDONG_LISTEN=0.0.0.0:8080 LIANDONG_DATA_DIR=/var/lib/liandong
EXPOSE 8080
ENTRYPOINT ["liandong"]
CMD ["serve"]
