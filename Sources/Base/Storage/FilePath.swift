import Foundation

/// Paths written relative to something: a spec's folder, a dataset's root, the
/// working directory. One rule everywhere: an absolute path stays as written; a
/// relative one is joined to its base (an empty base leaves it as it is).
public enum FilePath {
    /// `path` resolved against the folder `base`; `standardized` also removes `.`
    /// and `..` components (and resolves symbolic links), for paths that are compared.
    public static func resolve(_ path: String, against base: String, standardized: Bool = false) -> String {
        let joined = path.hasPrefix("/") || base.isEmpty ? path : (base as NSString).appendingPathComponent(path)
        return standardized ? (joined as NSString).standardizingPath : joined
    }

    /// `path` resolved against the working directory.
    public static func absolute(_ path: String, standardized: Bool = false) -> String {
        resolve(path, against: FileManager.default.currentDirectoryPath, standardized: standardized)
    }

    /// The folder a file is in (`""` for a bare file name).
    public static func folder(of file: String) -> String { (file as NSString).deletingLastPathComponent }
}
