// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "hookgate",
    products: [
        .executable(name: "hookgate", targets: ["hookgate"]),
        .executable(name: "hookgate-bench", targets: ["hookgate-bench"]),
        .library(name: "HookgateClient", targets: ["HookgateClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(name: "CMalloc"),
        .target(
            name: "HookgateCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]),
        .target(name: "HookgateWire", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "HookgateStore",
            dependencies: ["HookgateCore", "CSQLite"]
        ),
        .target(
            name: "HookgateDelivery",
            dependencies: [
                "HookgateCore", "HookgateStore", "CCurl", .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "HookgateServer",
            dependencies: [
                "HookgateCore",
                "HookgateWire",
                "HookgateStore",
                "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "HookgateClient",
            dependencies: [
                "HookgateCore",
                "HookgateWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "hookgate",
            dependencies: [
                "CMalloc",
                "HookgateClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "HookgateCore",
                "HookgateStore",
                "HookgateDelivery",
                "HookgateServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(name: "hookgate-bench", dependencies: ["HookgateCore", "HookgateDelivery"]),
        // libFuzzer target (contrib/fuzz/run.sh builds it with -sanitize=fuzzer,address and
        // -DFUZZING); an ordinary build replays inputs given as files.
        .executableTarget(
            name: "hookgate-fuzz",
            dependencies: [
                "HookgateCore", "HookgateStore", "HookgateServer", "HookgateWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "HookgateCoreTests",
            dependencies: ["HookgateCore", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "HookgateStoreTests", dependencies: ["HookgateCore", "HookgateStore"]),
        .testTarget(
            name: "HookgateDeliveryTests",
            dependencies: [
                "HookgateCore", "HookgateStore", "HookgateDelivery", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "HookgateServerTests",
            dependencies: [
                "HookgateCore", "HookgateServer", "HookgateStore", "HookgateWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["HookgateClient", "HookgateCore", "HookgateStore", "HookgateDelivery", "hookgate"],
            resources: []
        ),
    ],
    swiftLanguageModes: [.v6]
)
