// swift-tools-version: 6.0
// Reference server for Benchmarks/http.sh only: Hummingbird 2 answering the same /health body, so the
// HTTP benchmark compares against the best Swift server on the same machine in the same run.
// Not part of CareLedger; CareLedger itself takes no package dependencies.
import PackageDescription

let package = Package(
    name: "HummingbirdHello",
    dependencies: [.package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1")],
    targets: [
        .executableTarget(name: "HummingbirdHello", dependencies: [.product(name: "Hummingbird", package: "hummingbird")]),
    ]
)
