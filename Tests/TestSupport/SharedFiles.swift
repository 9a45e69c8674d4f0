import Foundation

/// The team's shared test vectors and fixtures, read in place from ../shared beside the repository.
public enum SharedFiles {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared")

    public static func url(_ path: String) -> URL {
        root.appendingPathComponent(path)
    }

    public static func data(_ path: String) throws -> Data {
        try Data(contentsOf: url(path))
    }

    /// A JSON file as a dictionary.
    public static func json(_ path: String) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: data(path)) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return object
    }

    /// Every file under `folder` with the extension, sorted by path.
    public static func files(under folder: String, extension pathExtension: String) throws -> [URL] {
        let base = url(folder)
        guard let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { return [] }
        return enumerator.compactMap { $0 as? URL }.filter { $0.pathExtension == pathExtension }.sorted { $0.path < $1.path }
    }
}
