import Foundation

/// One folder per test process for the files tests make and hand to others (key files for server
/// processes, migration folders): it goes when the process exits, however many tests made files.
public enum Scratch {
    public static let folder: URL = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("careledger-tests-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // Runs at exit, when `folder` is long initialized; a C function pointer captures nothing.
        atexit { try? FileManager.default.removeItem(at: Scratch.folder) }
        return folder
    }()

    /// A new path in the folder: `prefix`, a unique part, then `suffix`.
    public static func path(_ prefix: String, suffix: String = "") -> String {
        folder.appendingPathComponent("\(prefix)-\(UUID().uuidString)\(suffix)").path
    }
}
