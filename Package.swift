// swift-tools-version:6.0
import PackageDescription

// Layout:
//   SiloSystem  thin typed wrappers over the syscalls silo needs (one Errno error, EINTR retried in one place)
//   CSQLite     the system sqlite3 library (Debian: libsqlite3-dev)
//   CZlib       the system zlib (zlib1g-dev): .crate archives are gzip
//   CCrypto     the system libcrypto (libssl-dev): sha256 of .crate files against the index's cksum
//   CSiloShims  the few lines of C that must run inside a signal handler
//   SiloCore    the engine: root, keys, store, leases, caches, exec (one folder per concern)
//   SiloCLI     the one argument parser and the commands, each a small declarative type
//   silo        the executable: calls SiloCLI and exits
let package = Package(
    name: "silo",
    products: [
        .executable(name: "silo", targets: ["silo"]),
        .library(name: "SiloCore", targets: ["SiloCore"]),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "CSiloShims"),
        .target(name: "SiloSystem", dependencies: ["CSiloShims"]),
        .target(name: "SiloCore", dependencies: ["SiloSystem", "CSQLite", "CZlib", "CCrypto"]),
        .target(name: "SiloCLI", dependencies: ["SiloCore", "SiloSystem", "CSiloShims"]),
        .executableTarget(name: "silo", dependencies: ["SiloCLI"]),
        .testTarget(name: "SiloTests", dependencies: ["SiloCLI", "SiloCore", "SiloSystem", "silo"]),
    ]
)
