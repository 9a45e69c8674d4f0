// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "CareLedger",
    products: [
        .executable(name: "careledger", targets: ["careledger"]),
    ],
    targets: [
        // C libraries, reached only through these module maps.
        .systemLibrary(
            name: "CLibPQ",
            path: "Sources/CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // Linux epoll and eventfd, for the event loops (Glibc's module leaves them out).
        .systemLibrary(name: "CEpoll", path: "Sources/CEpoll"),
        .systemLibrary(
            name: "COpenSSL",
            path: "Sources/COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),

        // The event loops: a pinned epoll thread per core that watches sockets and runs tasks. Shared by
        // HTTP and Postgres so a request, its handler and its database waits stay on one thread.
        .target(name: "IOLoop", dependencies: ["CEpoll"]),
        // HTTP/1.1 transport: wire parsing, sockets, connections, routing. Knows nothing of health data.
        .target(name: "HTTP", dependencies: ["IOLoop", "Telemetry"]),
        // What every part writes for operators: JSON log lines (non-blocking sinks) and the Prometheus
        // text format, with wall-clock time. Knows nothing of HTTP or health data.
        .target(name: "Telemetry"),
        // TLS for the HTTP server over OpenSSL (a ConnectionTransport per connection).
        .target(name: "TLS", dependencies: ["COpenSSL", "HTTP", "Crypto"]),
        // The only code touching libpq: connections, pool, queries with binds, LISTEN, migrations.
        // Its async functions run on the caller's executor (a database event loop, for a request
        // handler), not hopping to the generic executor and back around every statement.
        .target(name: "Postgres", dependencies: ["CLibPQ", "IOLoop", "Crypto"],
                swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]),
        // The only code touching OpenSSL's crypto.
        .target(name: "Crypto", dependencies: ["COpenSSL"]),
        // The verifiable log, pure: canonical JSON (RFC 8785), Merkle trees and proofs (RFC 9162),
        // signed checkpoints, receipts. Knows nothing of HTTP or PostgreSQL.
        .target(name: "Ledger", dependencies: ["Crypto"]),
        // GS1 identifiers (GTIN, SGTIN, SSCC, GLN, Digital Link, element strings), EPCIS 2.0 documents and
        // the CBV 2.0 event hash, pure. Knows nothing of HTTP, PostgreSQL or health data.
        .target(name: "GS1", dependencies: ["Crypto", "Ledger"]),
        // Unique Device Identifiers in the formats of the three FDA-accredited issuing agencies (GS1,
        // HIBCC, ICCBBA), pure.
        .target(name: "UDI", dependencies: ["GS1"]),
        // The domain: one folder per area, each Routes -> Service -> Store (its README is the recipe).
        .target(name: "CareLedger", dependencies: ["HTTP", "Crypto", "GS1", "IOLoop", "Ledger", "Postgres", "Telemetry", "UDI"],
                exclude: ["README.md"]),
        // Command tree and composition root, kept out of the executable so it can be tested.
        .target(name: "CareLedgerCLI", dependencies: ["CareLedger", "HTTP", "IOLoop", "Postgres", "Telemetry", "TLS"]),
        .executableTarget(name: "careledger", dependencies: ["CareLedgerCLI"]),
        // Load generators for Benchmarks/; not shipped.
        .executableTarget(name: "careledger-bench", dependencies: ["CareLedger", "Crypto", "IOLoop", "Postgres"],
                          swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]),

        // Helpers shared by test targets (throwaway schemas and databases); never shipped.
        .target(name: "TestSupport", dependencies: ["Postgres"], path: "Tests/TestSupport"),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "IOLoop", "Telemetry", "TestSupport"]),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto", "TestSupport"]),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "Crypto", "TestSupport"]),
        .testTarget(name: "GS1Tests", dependencies: ["GS1", "Ledger", "TestSupport"]),
        .testTarget(name: "UDITests", dependencies: ["UDI", "GS1"]),
        .testTarget(name: "PostgresTests", dependencies: ["IOLoop", "Postgres", "TestSupport"]),
        .testTarget(name: "CareLedgerTests", dependencies: ["CareLedger", "CareLedgerCLI", "GS1", "HTTP", "IOLoop", "Postgres", "Telemetry", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
