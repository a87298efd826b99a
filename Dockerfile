# syntax=docker/dockerfile:1
# lapse's container image: a release build, then only the binary on a
# distroless base (glibc and libgcc, no shell, no package manager), running
# as the unprivileged user 65532 and happy on a read-only root filesystem
# (lapse writes nothing but notify's state file, in /var/lib/lapse, which
# the manifests in deploy/ mount as a volume).
#
#   docker build -t lapse:0.1.0 --build-arg LAPSE_REVISION=$(git rev-parse --short=12 HEAD) .
#   docker run --rm --read-only -p 10070:10070 -v "$PWD/examples/demo:/demo:ro" lapse:0.1.0 serve /demo
#
# Both stages are Debian 12 (bookworm), so the binary links against the
# glibc it runs with. Tags, not digests: pin digests where you build.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# build.rs asks git for the revision; there is no .git in the build context.
ARG LAPSE_REVISION=unknown
ENV LAPSE_REVISION=${LAPSE_REVISION}
# Cargo.toml names the benches, so they are part of the manifest.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin lapse \
    && install -D -m 0755 target/release/lapse /out/lapse

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lapse /lapse
# distroless's "nonroot" user, by number so that runAsNonRoot can check it.
USER 65532:65532
EXPOSE 10070
ENTRYPOINT ["/lapse"]
CMD ["serve"]
